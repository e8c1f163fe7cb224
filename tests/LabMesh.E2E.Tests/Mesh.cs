using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>The mesh as a client sees it through the gateway: one team's stubs, and a client's patience.</summary>
public sealed class Mesh : IDisposable
{
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How long a client keeps retrying a call the gateway answered UNAVAILABLE.</summary>
    public static readonly TimeSpan RetryFor = TimeSpan.FromSeconds(60);

    /// <summary>How often a test polls the mesh for what it waits on (listing every event is not cheap).</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private readonly GrpcChannel _channel;

    public Mesh(string gateway, string team)
    {
        Team = team;
        _channel = GrpcChannel.ForAddress(gateway);
        var invoker = TestCaller.Invoker(_channel, team);
        Requisitions = new RequisitionService.RequisitionServiceClient(invoker);
        Results = new ResultsInterpretationService.ResultsInterpretationServiceClient(invoker);
        Notifications = new NotificationService.NotificationServiceClient(invoker);
    }

    public string Team { get; }

    public RequisitionService.RequisitionServiceClient Requisitions { get; }

    public ResultsInterpretationService.ResultsInterpretationServiceClient Results { get; }

    public NotificationService.NotificationServiceClient Notifications { get; }

    /// <summary>Calls that failed UNAVAILABLE and were sent again (the same request, the same request id).</summary>
    public int Retries => _retries;

    private int _retries;

    /// <summary>
    /// A unary call as a careful client makes it: UNAVAILABLE (a replica went away under the gateway) is sent
    /// again, unchanged, after a short pause; anything else is the answer.
    /// </summary>
    public async Task<T> CallAsync<T>(Func<DateTime, AsyncUnaryCall<T>> call)
    {
        var timer = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call(DateTime.UtcNow.Add(CallTimeout));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && timer.Elapsed < RetryFor)
            {
                Interlocked.Increment(ref _retries);
                await Task.Delay(100);
            }
        }
    }

    /// <summary>A placed at-home order for one test, created under <paramref name="requestId"/>.</summary>
    public Task<CreateRequisitionResponse> PlaceAsync(string requestId, string test = "BMP")
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = requestId,
            Patient = new Patient { Id = "patient-" + requestId[..8], GivenName = "Grace", FamilyName = "Hopper", BirthDate = "1906-12-09" },
            OrderingProvider = new Provider { Id = "prov-e2e", Name = "Dr. E2E" },
            Lab = "LabCorp",
            Modality = TestModality.AtHomePhlebotomy,
            Place = true,
        };
        request.Tests.Add(new OrderedTest { Code = test, PartnerId = "lab-e2e" });
        return CallAsync(deadline => Requisitions.CreateRequisitionAsync(request, deadline: deadline));
    }

    /// <summary>A partial report on the order's test with a critical potassium, under <paramref name="requestId"/>.</summary>
    public Task<SubmitResultsResponse> SubmitCriticalAsync(Contracts.Requisition.V1.Requisition order, string requestId)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = requestId,
            RequisitionId = order.Id,
            Metadata = new ReportMetadata
            {
                Laboratory = "LabCorp",
                SpecimenNumber = "E2E" + requestId[..8],
                Status = ReportStatus.Partial,
                DateCollected = "2026-11-20",
                DateReported = "2026-11-21",
            },
        };
        request.ServiceRequestIds.Add(order.ServiceRequests[0].Id);
        request.Results.Add(new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.9, MinRangeValue = 3.5, MaxRangeValue = 5.1 });
        return CallAsync(deadline => Results.SubmitResultsAsync(request, deadline: deadline));
    }

    /// <summary>Every requisition of the team, every page.</summary>
    public async Task<List<Contracts.Requisition.V1.Requisition>> AllRequisitionsAsync()
    {
        var all = new List<Contracts.Requisition.V1.Requisition>();
        var request = new ListRequisitionsRequest { PageSize = 100 };
        do
        {
            var page = await CallAsync(deadline => Requisitions.ListRequisitionsAsync(request, deadline: deadline));
            all.AddRange(page.Requisitions);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return all;
    }

    /// <summary>Every event of the team on the event stream (ListEvents from the start), optionally of one type.</summary>
    public async Task<List<Event>> AllEventsAsync(string? type = null)
    {
        var all = new List<Event>();
        var request = new ListEventsRequest { PageSize = 1000, Filter = new EventFilter() };
        if (type is not null)
        {
            request.Filter.Types_.Add(type);
        }

        while (true)
        {
            var page = await CallAsync(deadline => Notifications.ListEventsAsync(request, deadline: deadline));
            all.AddRange(page.Events.Select(e => e.Event));
            if (page.Events.Count == 0 || page.NextCursor.Length == 0 || page.NextCursor == request.After)
            {
                return all;
            }

            request.After = page.NextCursor;
        }
    }

    /// <summary>Every open critical result of the team.</summary>
    public async Task<List<CriticalResultAcknowledgement>> OpenCriticalResultsAsync()
    {
        var all = new List<CriticalResultAcknowledgement>();
        var request = new ListUnacknowledgedCriticalResultsRequest { PageSize = 100 };
        do
        {
            var page = await CallAsync(deadline => Notifications.ListUnacknowledgedCriticalResultsAsync(request, deadline: deadline));
            all.AddRange(page.CriticalResults);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return all;
    }

    public void Dispose() => _channel.Dispose();
}

/// <summary>
/// A Subscribe stream through the gateway that, like <c>labmesh watch</c>, resumes from the last cursor it
/// got whenever the stream breaks (the Notification replica under it went away). Counts every event by id.
/// </summary>
public sealed class Follower : IAsyncDisposable
{
    private readonly Mesh _mesh;
    private readonly string[] _types;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _following;
    private string _cursor = "";

    private Follower(Mesh mesh, string[] types)
    {
        _mesh = mesh;
        _types = types;
        _following = Task.Run(FollowAsync);
    }

    /// <summary>Events seen, by id, with how many times each arrived.</summary>
    public ConcurrentDictionary<string, (Event Event, int Times)> Seen { get; } = new();

    /// <summary>How each broken stream ended (the status codes), in order.</summary>
    public ConcurrentQueue<StatusCode> Breaks { get; } = new();

    /// <summary>Subscribes and waits for the first heartbeat: from then on nothing of the team is missed.</summary>
    public static async Task<Follower> StartAsync(Mesh mesh, params string[] types)
    {
        var follower = new Follower(mesh, types);
        await follower._subscribed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return follower;
    }

    public IEnumerable<Event> Events(string type) => Seen.Values.Where(s => s.Event.Type == type).Select(s => s.Event);

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
            request.Filter.Types_.AddRange(_types);
            try
            {
                using var call = _mesh.Notifications.Subscribe(request, cancellationToken: _stop.Token);
                while (await call.ResponseStream.MoveNext(_stop.Token))
                {
                    var message = call.ResponseStream.Current;
                    if (message.Event is { } e)
                    {
                        Seen.AddOrUpdate(e.Id, (e, 1), (_, seen) => (seen.Event, seen.Times + 1));
                    }

                    if (message.Cursor.Length > 0)
                    {
                        _cursor = message.Cursor;
                    }

                    _subscribed.TrySetResult();
                }
            }
            catch (RpcException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e)
            {
                Breaks.Enqueue(e.StatusCode);
                await Task.Delay(100);
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
