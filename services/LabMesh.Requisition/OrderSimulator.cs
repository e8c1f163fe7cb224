using System.Collections.Concurrent;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;

namespace LabMesh.Requisition;

/// <summary>
/// The SimulateOrder sandbox: walks a requisition through planned order statuses, one every
/// step delay, through the same path as RecordOrderEvent (so every event fires and the service
/// requests follow). A simulation belongs to the replica that started it and stops with it.
/// </summary>
public sealed partial class OrderSimulator(
    RequisitionWorkflow workflow,
    IHostApplicationLifetime lifetime,
    ILogger<OrderSimulator> logger)
{
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);

    /// <summary>Starts walking <paramref name="requisitionId"/> through <paramref name="statuses"/>; ALREADY_EXISTS while one runs for it.</summary>
    public Task Start(Caller caller, string requisitionId, IReadOnlyList<string> statuses, TimeSpan stepDelay)
    {
        var simulator = caller with { Subject = "simulator:" + caller.Subject };
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_running.TryAdd(requisitionId, gate.Task))
        {
            throw new AlreadyExistsException("simulation", requisitionId, $"A simulation is already running for requisition '{requisitionId}'.");
        }

        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var status in statuses)
                {
                    await Task.Delay(stepDelay, lifetime.ApplicationStopping);
                    await workflow.RecordEventAsync(simulator, requisitionId, null, status, "simulated", DateTime.UtcNow.AddSeconds(30),
                        lifetime.ApplicationStopping);
                }
            }
            catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                LogSimulationStopped(logger, requisitionId, ex);
            }
            finally
            {
                _running.TryRemove(requisitionId, out _);
                gate.TrySetResult();
            }
        });
        return gate.Task;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Simulation of requisition {RequisitionId} stopped early")]
    private static partial void LogSimulationStopped(ILogger logger, string requisitionId, Exception exception);
}
