// The Firely POCOs annotate nearly every element as nullable; the assertions below fail on a missing one.
#nullable disable
using System.Text.Json;
using Grpc.Core;
using Firely.Fhir.Validation;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Specification.Source;
using Hl7.Fhir.Specification.Terminology;
using Hl7.Fhir.Validation;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ResultsInterpretation.Fhir;
using LabMesh.Testing;
using FhirPatient = Hl7.Fhir.Model.Patient;
using FhirServiceRequest = Hl7.Fhir.Model.ServiceRequest;
using Patient = LabMesh.Contracts.Common.V1.Patient;
using FhirTask = Hl7.Fhir.Model.Task;
using Task = System.Threading.Tasks.Task;

namespace LabMesh.ResultsInterpretation.Tests;

public sealed class SqliteFhirBundleTests(SqliteResultsMesh fixture) : FhirBundleTests(fixture.Mesh), IClassFixture<SqliteResultsMesh>;

public sealed class PostgresFhirBundleTests(PostgresResultsMesh fixture) : FhirBundleTests(fixture.Mesh), IClassFixture<PostgresResultsMesh>;

/// <summary>
/// GetFhirBundle through the gRPC API, for every state of the CLI demo's order (tools/LabMesh.Cli demo:
/// an at-home phlebotomy BMP and CBC, walked from draft to an amended final report) and a cancelled one.
/// Each Bundle is parsed back by the Firely SDK in strict mode and validated structurally (the SDK's
/// POCO validation: cardinalities, required elements, code and id formats), then compared with what the
/// gRPC API says about the same order; then validated against the R4 core profiles by the Firely validator.
/// </summary>
public abstract class FhirBundleTests(ResultsMesh mesh)
{
    private const string GivenName = "Imogen";
    private const string FamilyName = "Quasthoff";
    private const string BirthDate = "1961-07-23";

    private static readonly JsonSerializerOptions Strict =
        new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector).UsingMode(DeserializationMode.Strict);

    // The Firely validator against the R4 core profiles, read from the specification.zip of
    // Hl7.Fhir.Specification.Data.R4; compiling the profiles takes tens of seconds once per test run.
    private static readonly Lazy<Validator> Profiles = new(() =>
    {
        var source = new CachedResolver(ZipSource.CreateValidationSource());
        return new Validator(source, new LocalTerminologyService(source));
    });

    private static readonly Lock ProfilesLock = new();

    private static readonly Lazy<BaseFhirJsonSerializer> ByName = new(() =>
    {
        var inspector = new Hl7.Fhir.Introspection.ModelInspector(Hl7.Fhir.Specification.FhirRelease.R4);
        inspector.Import(typeof(Base).Assembly);
        inspector.Import(typeof(ModelInfo).Assembly);
        return new BaseFhirJsonSerializer(inspector);
    });

    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private ResultsInterpretationService.ResultsInterpretationServiceClient Results => mesh.ResultsClient(_team);

    private RequisitionService.RequisitionServiceClient Requisitions => mesh.RequisitionClient(_team);

    [Fact]
    public async Task GetFhirBundle_EveryStateOfTheDemoOrder_ParsesValidatesAndMatchesTheOrder()
    {
        var created = (await Requisitions.CreateRequisitionAsync(Draft(), deadline: Deadline)).Requisition;
        var states = new List<string>();

        async Task<Bundle> CheckAsync(string state)
        {
            states.Add(state);
            return await AssertBundleMatchesAsync(created.Id, state);
        }

        await CheckAsync("draft");
        var placed = (await Requisitions.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;
        await CheckAsync("placed");
        foreach (var status in new[]
                 {
                     "received.at_home_phlebotomy.requisition_created",
                     "collecting_sample.at_home_phlebotomy.appointment_scheduled",
                     "collecting_sample.at_home_phlebotomy.draw_completed",
                 })
        {
            await Requisitions.RecordOrderEventAsync(new RecordOrderEventRequest { Id = placed.Id, Status = status }, deadline: Deadline);
            await CheckAsync(status);
        }

        var panel = placed.ServiceRequests.Single(s => s.Code == "BMP").Id;
        var bloodCount = placed.ServiceRequests.Single(s => s.Code == "CBC").Id;
        await Results.SubmitResultsAsync(CriticalPartial(placed.Id, panel), deadline: Deadline);
        var partial = await CheckAsync("partial report");
        var potassium = Observations(partial).Single(o => o.Code.Coding[0].Code == "potassium");
        Assert.Equal("HH", potassium.Interpretation.Single().Coding.Single().Code);
        Assert.Equal(DiagnosticReport.DiagnosticReportStatus.Partial, Reports(partial).Single().Status);

        await Requisitions.RecordOrderEventAsync(new RecordOrderEventRequest { Id = placed.Id, Status = "sample_with_lab.at_home_phlebotomy.partial_results" }, deadline: Deadline);
        await CheckAsync("partial_results");
        var final = (await Results.SubmitResultsAsync(Final(placed.Id, panel, bloodCount, glucoseHigh: 99), deadline: Deadline)).Report;
        var finalBundle = await CheckAsync("final report");
        Assert.Equal(
            [DiagnosticReport.DiagnosticReportStatus.Partial, DiagnosticReport.DiagnosticReportStatus.Final],
            Reports(finalBundle).Select(r => r.Status!.Value));
        var glucose = Observations(finalBundle).Single(o => o.Code.Coding[0].Code == "glucose");
        Assert.Equal("H", glucose.Interpretation.Single().Coding.Single().Code);

        await Requisitions.RecordOrderEventAsync(new RecordOrderEventRequest { Id = placed.Id, Status = "completed.at_home_phlebotomy.completed" }, deadline: Deadline);
        await CheckAsync("completed");
        await Results.AmendResultsAsync(Amendment(final.Id, panel, bloodCount), deadline: Deadline);
        var amended = await CheckAsync("amended report");
        Assert.Equal(
            [DiagnosticReport.DiagnosticReportStatus.Partial, DiagnosticReport.DiagnosticReportStatus.Final, DiagnosticReport.DiagnosticReportStatus.Corrected],
            Reports(amended).Select(r => r.Status!.Value));
        var corrected = Observations(amended).Where(o => o.Status == ObservationStatus.Corrected).Single(o => o.Code.Coding[0].Code == "glucose");
        Assert.Equal("N", corrected.Interpretation.Single().Coding.Single().Code);
        Assert.Equal(140m, corrected.ReferenceRange.Single().High.Value);

        var serviceRequests = Resources<FhirServiceRequest>(amended);
        Assert.All(serviceRequests, s => Assert.Equal(RequestStatus.Completed, s.Status));
        Assert.All(Resources<FhirTask>(amended), t => Assert.Equal("FULL_RESULTS_READY", t.BusinessStatus.Coding.Single().Code));
        Assert.Equal(
            ["draft", "placed", "received.at_home_phlebotomy.requisition_created", "collecting_sample.at_home_phlebotomy.appointment_scheduled",
                "collecting_sample.at_home_phlebotomy.draw_completed", "partial report", "partial_results", "final report", "completed", "amended report"],
            states);
    }

    [Fact]
    public async Task GetFhirBundle_CancelledOrder_HasRevokedServiceRequestsAndCancelledTasks()
    {
        var draft = Draft();
        draft.Place = true;
        var placed = (await Requisitions.CreateRequisitionAsync(draft, deadline: Deadline)).Requisition;
        await Requisitions.CancelRequisitionAsync(new CancelRequisitionRequest { Id = placed.Id }, deadline: Deadline);

        var bundle = await AssertBundleMatchesAsync(placed.Id, "cancelled");

        Assert.All(Resources<FhirServiceRequest>(bundle), s => Assert.Equal(RequestStatus.Revoked, s.Status));
        Assert.All(Resources<FhirTask>(bundle), t => Assert.Equal(FhirTask.TaskStatus.Cancelled, t.Status));
    }

    // (marker, interpretation code): every v3 ObservationInterpretation code the Bundle uses, from a marker's reading.
    [Fact]
    public async Task GetFhirBundle_Interpretation_IsTheV3CodeOfTheReadingAndRangeFlags()
    {
        var draft = Draft();
        draft.Place = true;
        var placed = (await Requisitions.CreateRequisitionAsync(draft, deadline: Deadline)).Requisition;
        var panel = placed.ServiceRequests.Single(s => s.Code == "BMP").Id;
        var report = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = placed.Id,
            ServiceRequestIds = { panel },
            Metadata = new ReportMetadata { Laboratory = "LabMesh Demo Lab", Status = ReportStatus.Partial, DateCollected = "2026-12-01" },
            Results =
            {
                Marker("sodium", "mmol/L", 139, 135, 145),
                Marker("chloride", "mmol/L", 90, 98, 107),
                Marker("glucose", "mg/dL", 112, 70, 99),
                new Marker(Marker("co2", "mmol/L", 25, 22, 29)) { Interpretation = Interpretation.Abnormal },
                Marker("potassium", "mmol/L", 6.8, 3.5, 5.1),
                Marker("calcium", "mg/dL", 6.0, 8.6, 10.3),
                Marker("hemoglobin", "g/L", 60, null, null),
                new Marker { Name = "hiv", Slug = "hiv", TextValue = "negative" },
                new Marker { Name = "crp", Slug = "crp", Unit = "mg/L", TextValue = "<0.5", MaxRangeValue = 5 },
            },
        };
        await Results.SubmitResultsAsync(report, deadline: Deadline);

        var bundle = await AssertBundleMatchesAsync(placed.Id, "interpretations");

        var codes = Observations(bundle).ToDictionary(o => o.Code.Coding[0].Code, o => o.Interpretation.SingleOrDefault()?.Coding.Single().Code);
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["sodium"] = "N", ["chloride"] = "L", ["glucose"] = "H", ["co2"] = "A",
                ["potassium"] = "HH", ["calcium"] = "LL", ["hemoglobin"] = "AA", ["hiv"] = null, ["crp"] = "N",
            },
            codes);
        Assert.All(Observations(bundle).SelectMany(o => o.Interpretation.SelectMany(i => i.Coding)),
            c => Assert.Equal(FhirBundleWriter.InterpretationSystem, c.System));
        var hemoglobin = (Quantity)Observations(bundle).Single(o => o.Code.Coding[0].Code == "hemoglobin").Value;
        Assert.Equal((60m, "g/L", FhirBundleWriter.UcumSystem, "g/L"), (hemoglobin.Value!.Value, hemoglobin.Unit, hemoglobin.System, hemoglobin.Code));
        var crp = (Quantity)Observations(bundle).Single(o => o.Code.Coding[0].Code == "crp").Value;
        Assert.Equal((Quantity.QuantityComparator.LessThan, 0.5m), (crp.Comparator!.Value, crp.Value!.Value));
        Assert.Equal("negative", ((FhirString)Observations(bundle).Single(o => o.Code.Coding[0].Code == "hiv").Value).Value);
    }

    [Fact]
    public async Task GetFhirBundle_UnknownOrOtherTeamsRequisition_IsNotFound_AndNoIdIsInvalid()
    {
        var placed = await mesh.PlaceOrderAsync(_team, "LIPID_PANEL");

        var other = mesh.ResultsClient("team-" + Guid.NewGuid().ToString("N")[..8]);
        var hidden = await Assert.ThrowsAsync<RpcException>(() => other.GetFhirBundleAsync(
            new GetFhirBundleRequest { RequisitionId = placed.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, hidden.StatusCode);
        var unknown = await Assert.ThrowsAsync<RpcException>(() => Results.GetFhirBundleAsync(
            new GetFhirBundleRequest { RequisitionId = Guid.NewGuid().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        var empty = await Assert.ThrowsAsync<RpcException>(() => Results.GetFhirBundleAsync(new GetFhirBundleRequest(), deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
        Assert.Contains("requisition_id", empty.Status.Detail + string.Join(",", empty.Trailers.Select(t => t.Key)), StringComparison.Ordinal);
    }

    // 500 markers a report, each a few dozen bytes stored and several hundred as an Observation: the store's page
    // (1 MiB stored) would be far over 4 MiB as JSON, so the first Bundle is cut by its JSON budget.
    [Fact]
    public async Task GetFhirBundle_ManyLargeReports_ComeInBundlesUnderTheMessageLimit_EachVersionOnce()
    {
        var draft = Draft();
        draft.Place = true;
        var placed = (await Requisitions.CreateRequisitionAsync(draft, deadline: Deadline)).Requisition;
        var panel = placed.ServiceRequests.Single(s => s.Code == "BMP").Id;
        for (var i = 0; i < 12; i++)
        {
            var report = new SubmitResultsRequest
            {
                RequestId = Guid.NewGuid().ToString(),
                RequisitionId = placed.Id,
                ServiceRequestIds = { panel },
                Metadata = new ReportMetadata { Laboratory = "LabMesh Demo Lab", Status = ReportStatus.Partial, DateCollected = "2026-12-01" },
            };
            report.Results.AddRange(Enumerable.Range(0, 500).Select(m => Marker($"analyte_{m}", "mg/dL", 1, 0, 2, panel)));
            await Results.SubmitResultsAsync(report, deadline: Deadline);
        }

        var versions = new List<string>();
        var sizes = new List<int>();
        var token = "";
        do
        {
            var response = await Results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = placed.Id, PageToken = token }, deadline: Deadline);
            sizes.Add(response.CalculateSize());
            var bundle = ParseAndValidate(response.BundleJson, $"page {sizes.Count}");
            Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(response.BundleJson), 1, FhirExport.MaxJsonBytes);
            // Each Bundle resolves on its own: the order's resources are on every page.
            Assert.Equal(2, Resources<FhirServiceRequest>(bundle).Count);
            Assert.Single(Resources<FhirPatient>(bundle));
            var fullUrls = bundle.Entry.Select(e => e.FullUrl).ToHashSet();
            Assert.All(bundle.Entry.SelectMany(e => References(e.Resource)).Where(r => r.Reference is not null), r => Assert.Contains(r.Reference, fullUrls));
            var next = bundle.Link.SingleOrDefault(l => l.Relation == "next");
            Assert.Equal(response.NextPageToken.Length > 0, next is not null);
            if (next is not null)
            {
                Assert.Equal($"/v1/results/requisitions/{placed.Id}/fhir?pageToken={Uri.EscapeDataString(response.NextPageToken)}", next.Url);
            }
            versions.AddRange(Reports(bundle).Select(r => r.Identifier.Single(i => i.System == FhirBundleWriter.ReportVersionSystem).Value));
            token = response.NextPageToken;
        }
        while (token.Length > 0 && sizes.Count < 20);

        Assert.Equal(12, versions.Count);
        Assert.Equal(12, versions.Distinct().Count());
        Assert.True(sizes.Count >= 2, $"{sizes.Count} Bundles for 12 reports of 500 markers");
        Assert.All(sizes, size => Assert.InRange(size, 1, 4 * 1024 * 1024 - 1));

        var bad = await Assert.ThrowsAsync<RpcException>(() => Results.GetFhirBundleAsync(
            new GetFhirBundleRequest { RequisitionId = placed.Id, PageToken = "not-a-token" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal(["page_token"], bad.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field));
        var tooMany = await Assert.ThrowsAsync<RpcException>(() => Results.GetFhirBundleAsync(
            new GetFhirBundleRequest { RequisitionId = placed.Id, PageSize = 501 }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tooMany.StatusCode);
    }

    // One version a Bundle: an amendment on its own page still reads as corrected against the version before it.
    [Fact]
    public async Task GetFhirBundle_OneVersionAPage_AmendmentIsStillCorrected()
    {
        var draft = Draft();
        draft.Place = true;
        var placed = (await Requisitions.CreateRequisitionAsync(draft, deadline: Deadline)).Requisition;
        var panel = placed.ServiceRequests.Single(s => s.Code == "BMP").Id;
        var bloodCount = placed.ServiceRequests.Single(s => s.Code == "CBC").Id;
        var final = (await Results.SubmitResultsAsync(Final(placed.Id, panel, bloodCount, glucoseHigh: 99), deadline: Deadline)).Report;
        var amendment = Amendment(final.Id, panel, bloodCount);
        await Results.AmendResultsAsync(amendment, deadline: Deadline);

        var statuses = new List<DiagnosticReport.DiagnosticReportStatus?>();
        var token = "";
        do
        {
            var response = await Results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = placed.Id, PageSize = 1, PageToken = token }, deadline: Deadline);
            var bundle = ParseAndValidate(response.BundleJson, $"version {statuses.Count + 1}");
            statuses.Add(Assert.Single(Reports(bundle)).Status);
            token = response.NextPageToken;
        }
        while (token.Length > 0 && statuses.Count < 5);

        Assert.Equal([DiagnosticReport.DiagnosticReportStatus.Final, DiagnosticReport.DiagnosticReportStatus.Corrected], statuses);
    }

    /// <summary>
    /// Reads the Bundle and the order through the gRPC API until they agree (the results' effects reach
    /// the service requests just after SubmitResults returns), then checks the Bundle against the order.
    /// </summary>
    private async Task<Bundle> AssertBundleMatchesAsync(string requisitionId, string state)
    {
        var (bundle, requisition, reports) = await Eventually.MatchAsync(
            async () =>
            {
                var requisition = (await Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = requisitionId }, deadline: Deadline)).Requisition;
                var reports = (await Results.GetResultsAsync(new GetResultsRequest { RequisitionId = requisitionId, IncludeHistory = true }, deadline: Deadline)).Reports;
                var response = await Results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = requisitionId }, deadline: Deadline);
                Assert.Equal(FhirBundleWriter.ContentType, response.ContentType);
                var parsed = ParseAndValidate(response.BundleJson, state);
                // A model inspector made as FhirBundleWriter makes its own (the two model assemblies imported by name, for
                // Native AOT) writes what the SDK's ModelInfo.ModelInspector writes of the same Bundle, byte for byte.
                Assert.Equal(new BaseFhirJsonSerializer(ModelInfo.ModelInspector).SerializeToString(parsed), ByName.Value.SerializeToString(parsed));
                return (Bundle: parsed, requisition, reports.ToList());
            },
            read => Resources<FhirTask>(read.Bundle).Select(t => t.BusinessStatus?.Coding.Single().Code ?? "")
                .SequenceEqual(read.requisition.ServiceRequests.OrderBy(s => s.Line).Select(s => BusinessStatusWord(s.TaskBusinessStatus))),
            TimeSpan.FromSeconds(20), $"the Bundle of '{state}' to show the order's task statuses");

        ValidateAgainstCoreProfiles(bundle, state);
        Assert.Equal(Bundle.BundleType.Collection, bundle.Type);
        Assert.Equal(requisitionId, bundle.Identifier.Value);
        var fullUrls = bundle.Entry.Select(e => e.FullUrl).ToHashSet();
        Assert.Equal(bundle.Entry.Count, fullUrls.Count);
        foreach (var reference in bundle.Entry.SelectMany(e => References(e.Resource)).Where(r => r.Reference is not null))
        {
            Assert.Contains(reference.Reference, fullUrls);
        }

        var serviceRequests = Resources<FhirServiceRequest>(bundle);
        Assert.Equal(requisition.ServiceRequests.Count, serviceRequests.Count);
        foreach (var (sr, resource) in requisition.ServiceRequests.OrderBy(s => s.Line).Zip(serviceRequests))
        {
            Assert.Equal(sr.Id, resource.Id);
            Assert.Equal(sr.Code, resource.Code.Coding.Single().Code);
            Assert.Equal(RequestIntent.Order, resource.Intent);
            Assert.Equal(sr.Status switch
            {
                ServiceRequestStatus.Active => RequestStatus.Active,
                ServiceRequestStatus.Completed => RequestStatus.Completed,
                ServiceRequestStatus.Revoked => RequestStatus.Revoked,
                _ => RequestStatus.Unknown,
            }, resource.Status);
            Assert.Equal(requisitionId, resource.Requisition.Value);
            Assert.NotNull(resource.Subject.Reference);
            Assert.NotNull(resource.Requester.Reference);
            var task = Assert.Single(Resources<FhirTask>(bundle), t => t.Focus.Reference == "urn:uuid:" + sr.Id);
            Assert.Equal(BusinessStatusWord(sr.TaskBusinessStatus), task.BusinessStatus?.Coding.Single().Code ?? "");
        }

        Assert.Equal(reports.Count, Reports(bundle).Count);
        Assert.Equal(reports.Sum(r => r.Results.Count), Observations(bundle).Count);
        foreach (var (report, resource) in reports.Zip(Reports(bundle)))
        {
            Assert.Equal(report.ServiceRequestIds.Select(id => "urn:uuid:" + id), resource.BasedOn.Select(b => b.Reference));
            Assert.Equal(report.Results.Count, resource.Result.Count);
        }

        var patient = Assert.Single(Resources<FhirPatient>(bundle));
        Assert.Equal(requisition.Patient.Id, patient.Identifier.Single().Value);
        Assert.Empty(patient.Name);
        Assert.Null(patient.BirthDate);
        var json = JsonSerializer.Serialize(bundle, new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector));
        Assert.DoesNotContain(GivenName, json, StringComparison.Ordinal);
        Assert.DoesNotContain(FamilyName, json, StringComparison.Ordinal);
        Assert.DoesNotContain(BirthDate, json, StringComparison.Ordinal);
        return bundle;
    }

    /// <summary>Parses FHIR JSON strictly (any unknown element, bad value or type fails) and validates the POCOs.</summary>
    public static Bundle ParseAndValidate(string json, string state)
    {
        var bundle = JsonSerializer.Deserialize<Bundle>(json, Strict) ?? throw new InvalidOperationException("null Bundle");
        var issues = bundle.Validate(ModelInfo.ModelInspector, NarrativeValidationKind.FhirXhtml, new FhirAttributeValidator(), true);
        Assert.True(issues.Count == 0, $"{state}: " + string.Join("; ", issues.Select(i => i.Message)));
        return bundle;
    }

    /// <summary>
    /// Validates the Bundle against the R4 core profiles (cardinalities, FHIRPath invariants such as obs-3
    /// and bdl-7, required bindings): no error may remain.
    /// </summary>
    public static void ValidateAgainstCoreProfiles(Bundle bundle, string state)
    {
        OperationOutcome outcome;
        lock (ProfilesLock)
        {
            outcome = Profiles.Value.Validate(bundle);
        }
        var errors = outcome.Issue
            .Where(i => i.Severity is OperationOutcome.IssueSeverity.Error or OperationOutcome.IssueSeverity.Fatal)
            .Select(i => $"{i.Details?.Text} at {string.Join(",", i.Expression)}")
            .ToList();
        Assert.True(errors.Count == 0, $"{state}: the R4 core profiles: " + string.Join("; ", errors));
    }

    private static IEnumerable<ResourceReference> References(Base element) =>
        element.EnumerateElements().SelectMany(child => child.Value switch
        {
            ResourceReference reference => [reference],
            Base inner => References(inner),
            IEnumerable<Base> list => list.SelectMany(item => item is ResourceReference reference ? [reference] : References(item)),
            _ => [],
        });

    private static List<T> Resources<T>(Bundle bundle) where T : Resource => bundle.Entry.Select(e => e.Resource).OfType<T>().ToList();

    private static List<DiagnosticReport> Reports(Bundle bundle) => Resources<DiagnosticReport>(bundle);

    private static List<Observation> Observations(Bundle bundle) => Resources<Observation>(bundle);

    private static string BusinessStatusWord(TaskBusinessStatus status) => status == TaskBusinessStatus.Unspecified
        ? ""
        : ServiceRequestReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.EnumDescriptor>("TaskBusinessStatus").FindValueByNumber((int)status).Name;

    internal static CreateRequisitionRequest Draft() => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        Patient = new Patient { Id = "demo-patient-" + Guid.NewGuid().ToString("N")[..6], GivenName = GivenName, FamilyName = FamilyName, BirthDate = BirthDate, Sex = "female" },
        OrderingProvider = new Provider { Id = "demo-clinician", Name = "Dr. Demo", Npi = "1234567893" },
        Lab = "LabMesh Demo Lab",
        Modality = TestModality.AtHomePhlebotomy,
        Tests =
        {
            new OrderedTest { Code = "BMP", Description = "Basic metabolic panel", PartnerId = "lab-demo" },
            new OrderedTest { Code = "CBC", Description = "Complete blood count", PartnerId = "lab-demo" },
        },
        Place = false,
    };

    internal static SubmitResultsRequest CriticalPartial(string requisitionId, string panel) => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        RequisitionId = requisitionId,
        ServiceRequestIds = { panel },
        Metadata = new ReportMetadata { Laboratory = "LabMesh Demo Lab", Status = ReportStatus.Partial, DateCollected = "2026-12-01" },
        Results = { Marker("potassium", "mmol/L", 6.8, 3.5, 5.1, panel), Marker("sodium", "mmol/L", 138, 135, 145, panel) },
    };

    internal static SubmitResultsRequest Final(string requisitionId, string panel, string bloodCount, double glucoseHigh) => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        RequisitionId = requisitionId,
        ServiceRequestIds = { panel, bloodCount },
        Metadata = new ReportMetadata { Laboratory = "LabMesh Demo Lab", Status = ReportStatus.Final, DateCollected = "2026-12-01" },
        Results = { FinalMarkers(panel, bloodCount, glucoseHigh) },
    };

    internal static AmendResultsRequest Amendment(string reportId, string panel, string bloodCount) => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        ReportId = reportId,
        Reason = "Glucose reference range corrected: the sample was not fasting.",
        Metadata = new ReportMetadata { Laboratory = "LabMesh Demo Lab", Status = ReportStatus.Final, DateCollected = "2026-12-01" },
        Results = { FinalMarkers(panel, bloodCount, glucoseHigh: 140) },
        ExpectedVersion = 1,
    };

    // The demo's final markers (tools/LabMesh.Cli/Demo/DemoOrder.cs).
    private static Marker[] FinalMarkers(string panel, string bloodCount, double glucoseHigh) =>
    [
        Marker("sodium", "mmol/L", 139, 135, 145, panel),
        Marker("potassium", "mmol/L", 4.6, 3.5, 5.1, panel),
        Marker("chloride", "mmol/L", 102, 98, 107, panel),
        Marker("co2", "mmol/L", 25, 22, 29, panel),
        Marker("bun", "mg/dL", 14, 7, 20, panel),
        Marker("creatinine", "mg/dL", 0.9, 0.6, 1.2, panel),
        Marker("glucose", "mg/dL", 112, 70, glucoseHigh, panel),
        Marker("calcium", "mg/dL", 9.4, 8.6, 10.3, panel),
        Marker("wbc", "x10^9/L", 6.1, 4.0, 11.0, bloodCount),
        Marker("hemoglobin", "g/dL", 13.8, 12.0, 16.0, bloodCount),
        Marker("hematocrit", "%", 41, 36, 46, bloodCount),
        Marker("platelets", "x10^9/L", 250, 150, 400, bloodCount),
    ];

    private static Marker Marker(string slug, string unit, double value, double? min, double? max, string serviceRequestId = "")
    {
        var marker = ResultsServiceTests.Numeric(slug, value, unit, min, max);
        marker.ServiceRequestId = serviceRequestId;
        return marker;
    }
}
