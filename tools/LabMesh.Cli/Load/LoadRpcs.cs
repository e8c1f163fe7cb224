using Grpc.Core;
using LabMesh.Cli.Mesh;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;

namespace LabMesh.Cli.Load;

/// <summary>One RPC the load generator can call: its weight in the default mix and how to make call number n.</summary>
internal sealed record LoadRpc(string Name, int DefaultWeight, Func<LoadContext, long, CallOptions, Task> Invoke);

/// <summary>What the calls work on: the mesh, a run id that keeps request ids unique, and the requisitions made for the run.</summary>
internal sealed record LoadContext(MeshClient Mesh, string RunId, IReadOnlyList<Requisition> Seeds)
{
    public Requisition Seed(long n) => Seeds[(int)(n % Seeds.Count)];
}

/// <summary>
/// The RPCs of a load run. The default mix is mostly reads (the cached status read is the hot path
/// DESIGN.md sets a target for), with creates and result submissions as writes. Submitted markers are
/// normal, so a load run opens no critical result that a person would have to acknowledge.
/// </summary>
internal static class LoadRpcs
{
    public static IReadOnlyList<LoadRpc> All { get; } =
    [
        new("GetRequisitionStatus", 8, async (c, n, o) =>
            await c.Mesh.Requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = c.Seed(n).Id }, o)),
        new("GetRequisition", 6, async (c, n, o) =>
            await c.Mesh.Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = c.Seed(n).Id }, o)),
        new("CreateRequisition", 3, async (c, n, o) =>
            await c.Mesh.Requisitions.CreateRequisitionAsync(NewOrder(c.RunId, $"call-{n}"), o)),
        new("SubmitResults", 3, async (c, n, o) =>
            await c.Mesh.Results.SubmitResultsAsync(NormalReport(c.RunId, n, c.Seed(n)), o)),
        new("ListRequisitions", 0, async (c, _, o) =>
            await c.Mesh.Requisitions.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 20 }, o)),
        new("BatchGetStatus", 0, async (c, _, o) =>
            await c.Mesh.ServiceRequests.BatchGetStatusAsync(
                new BatchGetStatusRequest { Ids = { c.Seeds.SelectMany(s => s.ServiceRequests).Select(s => s.Id) } }, o)),
    ];

    public static string[] Names => [.. All.Select(r => r.Name)];

    /// <summary>Whether any of the RPCs reads or writes the run's own requisitions.</summary>
    public static bool NeedSeeds(IEnumerable<LoadRpc> rpcs) => rpcs.Any(r => r.Name != "CreateRequisition" && r.Name != "ListRequisitions");

    /// <summary>A placed walk-in order with one basic metabolic panel, idempotent by its request id.</summary>
    public static CreateRequisitionRequest NewOrder(string runId, string key) => new()
    {
        RequestId = $"load-{runId}-{key}",
        Patient = new Patient { Id = $"load-patient-{key}" },
        Lab = "LabMesh load",
        Modality = TestModality.WalkInTest,
        Tests = { new OrderedTest { Code = "BMP", Description = "Basic metabolic panel", PartnerId = "lab-load" } },
        Place = true,
    };

    private static SubmitResultsRequest NormalReport(string runId, long n, Requisition seed) => new()
    {
        RequestId = $"load-{runId}-report-{n}",
        RequisitionId = seed.Id,
        ServiceRequestIds = { seed.ServiceRequests[0].Id },
        Metadata = new ReportMetadata { Laboratory = "LabMesh load", SpecimenNumber = $"LOAD-{n}", Status = ReportStatus.Partial },
        Results =
        {
            new Marker { Name = "Sodium", Slug = "sodium", Unit = "mmol/L", NumericValue = 140, MinRangeValue = 135, MaxRangeValue = 145 },
            new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 4.2, MinRangeValue = 3.5, MaxRangeValue = 5.1 },
        },
    };
}
