using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Messaging.Events;

namespace LabMesh.Chaos;

/// <summary>
/// The callers: each worker places an order (CreateRequisition, place, as a clinician) and submits one report on it
/// (SubmitResults, as the lab's integration: a service caller, the only role SECURITY.md lets submit), every
/// <c>criticalEvery</c>-th with a critical potassium, through the gateway. A call that fails UNAVAILABLE, INTERNAL
/// (a stream reset as its replica died), DEADLINE_EXCEEDED or ABORTED is sent again unchanged, with the
/// same request_id, for up to <see cref="RetryFor"/>; any other answer is final. What returned OK is kept to be
/// read back.
/// </summary>
internal sealed class Driver(GrpcChannel channel, Metadata headers, Metadata labHeaders, int criticalEvery)
{
    public static readonly TimeSpan RetryFor = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private readonly RequisitionService.RequisitionServiceClient _requisitions = new(channel);
    private readonly ResultsInterpretationService.ResultsInterpretationServiceClient _results = new(channel);
    private int _sequence;
    private int _retries;
    private int _failed;

    public ConcurrentBag<string> Requisitions { get; } = [];

    /// <summary>Report id, requisition id, and whether it carried a critical value.</summary>
    public ConcurrentBag<(string Report, string Requisition, bool Critical)> Reports { get; } = [];

    public ConcurrentDictionary<StatusCode, int> RetriedCodes { get; } = new();

    public ConcurrentDictionary<string, int> FinalFailures { get; } = new();

    public int Retries => Volatile.Read(ref _retries);

    public int Failed => Volatile.Read(ref _failed);

    public async Task RunAsync(int workers, CancellationToken stop)
    {
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(() => WorkAsync(stop), CancellationToken.None)));
    }

    private async Task WorkAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var n = Interlocked.Increment(ref _sequence);
            var create = new CreateRequisitionRequest
            {
                RequestId = Guid.NewGuid().ToString(),
                // Synthetic: the tool never prints a patient's name or birth date.
                Patient = new Patient { Id = $"chaos-patient-{n}", GivenName = "Chaos", FamilyName = "Patient", BirthDate = "1970-01-01" },
                OrderingProvider = new Provider { Id = "prov-chaos", Name = "Dr. Chaos" },
                Lab = "LabCorp",
                Modality = TestModality.AtHomePhlebotomy,
                Place = true,
            };
            create.Tests.Add(new OrderedTest { Code = "BMP", PartnerId = "lab-chaos" });
            var order = await CallAsync("CreateRequisition", d => _requisitions.CreateRequisitionAsync(create, headers, d), stop);
            if (order is null)
            {
                continue;
            }

            Requisitions.Add(order.Requisition.Id);
            var critical = n % criticalEvery == 0;
            var submit = new SubmitResultsRequest
            {
                RequestId = Guid.NewGuid().ToString(),
                RequisitionId = order.Requisition.Id,
                Metadata = new ReportMetadata
                {
                    Laboratory = "LabCorp",
                    SpecimenNumber = "CHAOS" + n,
                    Status = ReportStatus.Partial,
                    DateCollected = "2026-12-01",
                    DateReported = "2026-12-02",
                },
            };
            submit.ServiceRequestIds.Add(order.Requisition.ServiceRequests[0].Id);
            submit.Results.Add(new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = critical ? 6.9 : 4.2, MinRangeValue = 3.5, MaxRangeValue = 5.1 });
            var report = await CallAsync("SubmitResults", d => _results.SubmitResultsAsync(submit, labHeaders, d), stop);
            if (report is not null)
            {
                Reports.Add((report.Report.Id, order.Requisition.Id, critical));
            }
        }
    }

    /// <summary>A unary call sent again unchanged (same request, same request_id) while the answer says "maybe not done".</summary>
    public async Task<T?> CallAsync<T>(string method, Func<DateTime, AsyncUnaryCall<T>> call, CancellationToken stop)
        where T : class
    {
        var timer = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call(DateTime.UtcNow.Add(CallTimeout));
            }
            catch (RpcException e) when (Retryable(e.StatusCode) && timer.Elapsed < RetryFor)
            {
                Interlocked.Increment(ref _retries);
                RetriedCodes.AddOrUpdate(e.StatusCode, 1, (_, n) => n + 1);
                await Task.Delay(200, CancellationToken.None);
            }
            catch (RpcException e)
            {
                // Once a call has begun it is finished (the drive's end does not abandon a write half-way).
                Interlocked.Increment(ref _failed);
                FinalFailures.AddOrUpdate($"{method} {e.StatusCode}: {Shorten(e.Status.Detail)}", 1, (_, n) => n + 1);
                return null;
            }
        }
    }

    private static bool Retryable(StatusCode code) =>
        code is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded or StatusCode.Aborted or StatusCode.ResourceExhausted;

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..120] + "...";
}

/// <summary>
/// A Subscribe stream through the gateway for critical results that, like <c>labmesh watch</c>, resumes from its
/// last cursor whenever the stream ends, whatever the code. Counts each event id and each break's code.
/// </summary>
internal sealed class Follower : IAsyncDisposable
{
    private readonly NotificationService.NotificationServiceClient _client;
    private readonly Metadata _headers;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _following;
    private string _cursor = "";

    private Follower(GrpcChannel channel, Metadata headers)
    {
        _client = new NotificationService.NotificationServiceClient(channel);
        _headers = headers;
        _following = Task.Run(FollowAsync);
    }

    public ConcurrentDictionary<string, int> Seen { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<StatusCode, int> Breaks { get; } = new();

    public static async Task<Follower> StartAsync(GrpcChannel channel, Metadata headers)
    {
        var follower = new Follower(channel, headers);
        await follower._subscribed.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return follower;
    }

    private async Task FollowAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var request = new SubscribeRequest
            {
                Filter = new EventFilter(),
                ResumeAfter = _cursor,
                HeartbeatInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            };
            request.Filter.Types_.Add(EventTypes.LabTestResultCritical);
            try
            {
                using var call = _client.Subscribe(request, _headers, cancellationToken: _stop.Token);
                while (await call.ResponseStream.MoveNext(_stop.Token))
                {
                    var message = call.ResponseStream.Current;
                    if (message.Event is { } e)
                    {
                        Seen.AddOrUpdate(e.Id, 1, (_, n) => n + 1);
                    }

                    if (message.Cursor.Length > 0)
                    {
                        _cursor = message.Cursor;
                    }

                    _subscribed.TrySetResult();
                }

                Breaks.AddOrUpdate(StatusCode.OK, 1, (_, n) => n + 1);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e)
            {
                Breaks.AddOrUpdate(e.StatusCode, 1, (_, n) => n + 1);
                await Task.Delay(200);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _following.WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
