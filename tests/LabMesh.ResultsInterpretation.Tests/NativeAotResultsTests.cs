using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Fhir;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// The Native AOT executable of ResultsInterpretation (issue 22 item 3): native code with no runtime beside it, its gRPC API
/// with the errors' details, REST (JSON transcoding, rd.xml), reflection, and GetFhirBundle, whose Bundle is written by the
/// Firely SDK (its POCO model read by reflection, the model's assemblies rooted for ILC in the project): byte for byte the
/// JSON the JIT-compiled writer (this test process) makes of the same requisition, reports and time, and valid FHIR R4 as
/// <see cref="FhirBundleTests"/> checks it.
/// </summary>
public sealed class NativeAotResultsTests(NativeAotResults results) : IClassFixture<NativeAotResults>
{
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private ResultsInterpretationService.ResultsInterpretationServiceClient Results => results.ResultsClient(_team);

    private RequisitionService.RequisitionServiceClient Requisitions => results.RequisitionClient(_team);

    [Fact]
    public void Executable_IsNativeCode_WithNoRuntimeLoaded()
    {
        var pid = results.Process.Id;
        Assert.Equal(results.Executable, new FileInfo($"/proc/{pid}/exe").LinkTarget);
        Assert.DoesNotContain(File.ReadLines($"/proc/{pid}/maps"), line => line.EndsWith("/libcoreclr.so", StringComparison.Ordinal));
    }

    // The order's states before results only: with reports, the executable's Bundle differs (their Quantities lack UCUM's system
    // and code) because Fhir.Metrics reads no unit as UCUM in the executable (Domain/Ucum.cs; README, Native AOT). Once it does,
    // this walks the demo order on through its partial, final and amended reports.
    [Fact]
    public async Task FhirBundle_OfTheDemoOrderBeforeResults_IsTheJitWritersJson_ByteForByte_AndValid()
    {
        var created = (await Requisitions.CreateRequisitionAsync(FhirBundleTests.Draft(), deadline: Deadline)).Requisition;
        await AssertBundleAsJitAsync(created.Id, "draft");
        var placed = (await Requisitions.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;
        await Requisitions.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = placed.Id, Status = "collecting_sample.at_home_phlebotomy.draw_completed" }, deadline: Deadline);
        var drawn = await AssertBundleAsJitAsync(placed.Id, "draw completed");

        var bundle = FhirBundleTests.ParseAndValidate(drawn, "draw completed");
        Assert.Equal(
            ["Patient", "Practitioner", "ServiceRequest", "Task"],
            bundle.Entry.Select(e => e.Resource!.TypeName).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(placed.ServiceRequests.Count, bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Task>().Count());
        FhirBundleTests.ValidateAgainstCoreProfiles(bundle, "draw completed");
    }

    [Fact]
    public async Task Errors_AnswerTheirStatusWithDetails()
    {
        var missing = await Assert.ThrowsAsync<RpcException>(() =>
            Results.GetReportAsync(new GetReportRequest { Id = Guid.NewGuid().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.NotNull(missing.GetDetail<Google.Rpc.ResourceInfo>());

        var placed = (await Requisitions.CreateRequisitionAsync(Placed(), deadline: Deadline)).Requisition;
        var panel = placed.ServiceRequests.Single(s => s.Code == "BMP").Id;
        var bad = FhirBundleTests.CriticalPartial(placed.Id, panel);
        bad.Results.Add(ResultsServiceTests.Numeric("glucose", double.NaN, "mg/dL"));
        var invalid = await Assert.ThrowsAsync<RpcException>(() => Results.SubmitResultsAsync(bad, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains(invalid.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations, v => v.Field.StartsWith("results[2]", StringComparison.Ordinal));
        Assert.Empty((await Results.GetResultsAsync(new GetResultsRequest { RequisitionId = placed.Id }, deadline: Deadline)).Reports);

        var partial = (await Results.SubmitResultsAsync(FhirBundleTests.CriticalPartial(placed.Id, panel), deadline: Deadline)).Report;
        var amend = FhirBundleTests.Amendment(partial.Id, panel, panel);
        var refused = await Assert.ThrowsAsync<RpcException>(() => Results.AmendResultsAsync(amend, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.NotNull(refused.GetDetail<Google.Rpc.PreconditionFailure>());

        var fhir = await Assert.ThrowsAsync<RpcException>(() =>
            Results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = Guid.NewGuid().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, fhir.StatusCode);
    }

    [Fact]
    public async Task Rest_AnswersAsTheGrpcApi_WithErrorsInTheirBody()
    {
        var placed = (await Requisitions.CreateRequisitionAsync(Placed(), deadline: Deadline)).Requisition;
        var panel = placed.ServiceRequests.Single(s => s.Code == "BMP").Id;
        var report = (await Results.SubmitResultsAsync(FhirBundleTests.CriticalPartial(placed.Id, panel), deadline: Deadline)).Report;

        using var http = new HttpClient { BaseAddress = new Uri(results.RestAddress), Timeout = TimeSpan.FromSeconds(30) };
        var (status, body) = await GetAsync(http, $"/v1/results/reports/{report.Id}");
        Assert.True(status == HttpStatusCode.OK, $"GET report: {(int)status} {body}");
        using (var json = JsonDocument.Parse(body))
        {
            var read = json.RootElement.GetProperty("report");
            Assert.Equal(report.Id, read.GetProperty("id").GetString());
            Assert.Equal("REPORT_STATUS_PARTIAL", read.GetProperty("metadata").GetProperty("status").GetString());
            Assert.Equal("INTERPRETATION_CRITICAL", read.GetProperty("metadata").GetProperty("interpretation").GetString());
            Assert.Equal(2, read.GetProperty("results").GetArrayLength());
        }

        (status, body) = await GetAsync(http, $"/v1/results/requisitions/{placed.Id}?includeHistory=true");
        Assert.True(status == HttpStatusCode.OK, $"GET results: {(int)status} {body}");
        using (var json = JsonDocument.Parse(body))
        {
            Assert.Equal(report.Id, json.RootElement.GetProperty("reports")[0].GetProperty("id").GetString());
        }

        (status, body) = await GetAsync(http, $"/v1/results/reports/{Guid.NewGuid()}");
        Assert.True(status == HttpStatusCode.NotFound, $"GET unknown report: {(int)status} {body}");
        using (var json = JsonDocument.Parse(body))
        {
            Assert.Equal((int)StatusCode.NotFound, json.RootElement.GetProperty("code").GetInt32());
            Assert.True(json.RootElement.GetProperty("details").GetArrayLength() > 0, body);
        }
    }

    [Fact]
    public async Task Reflection_DescribesEveryMethodOfTheService()
    {
        using var call = new V1.ServerReflection.ServerReflectionClient(results.Channel).ServerReflectionInfo(deadline: Deadline);
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { FileContainingSymbol = ResultsInterpretationService.Descriptor.FullName });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var answer = call.ResponseStream.Current;
        Assert.True(answer.ErrorResponse is null, $"reflection: {answer.ErrorResponse}");
        var described = answer.FileDescriptorResponse.FileDescriptorProto
            .Select(Google.Protobuf.Reflection.FileDescriptorProto.Parser.ParseFrom)
            .SelectMany(file => file.Service.Select(service => (Name: $"{file.Package}.{service.Name}", service.Method)))
            .Single(service => service.Name == ResultsInterpretationService.Descriptor.FullName);
        Assert.Equal(ResultsInterpretationService.Descriptor.Methods.Select(m => m.Name), described.Method.Select(m => m.Name));
    }

    /// <summary>
    /// GetFhirBundle of the executable, once the requisition read before and after it is the same (so the executable wrote
    /// it from that one), against <see cref="FhirBundleWriter.Write"/> in this process of that requisition, the report
    /// versions GetResults answers, and the Bundle's own timestamp; then parsed strictly and validated.
    /// </summary>
    private async Task<string> AssertBundleAsJitAsync(string requisitionId, string state)
    {
        var read = await Eventually.MatchAsync(
            async () =>
            {
                var before = (await Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = requisitionId }, deadline: Deadline)).Requisition;
                var reports = (await Results.GetResultsAsync(new GetResultsRequest { RequisitionId = requisitionId, IncludeHistory = true, PageSize = 500 }, deadline: Deadline)).Reports;
                GetFhirBundleResponse response;
                try
                {
                    response = await Results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = requisitionId }, deadline: Deadline);
                }
                catch (RpcException e)
                {
                    // What the executable logged says why (a type or member ILC did not keep, ...).
                    throw new Xunit.Sdk.XunitException($"GetFhirBundle of '{state}': {e.Status}\n{results.Process.Describe(60)}");
                }


                var after = (await Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = requisitionId }, deadline: Deadline)).Requisition;
                return (Json: response.BundleJson, Before: before, After: after, Reports: reports.ToList());
            },
            r => r.Before.Equals(r.After),
            TimeSpan.FromSeconds(20), $"the requisition of '{state}' to hold still around GetFhirBundle");

        var bundle = FhirBundleTests.ParseAndValidate(read.Json, state);
        var jit = Encoding.UTF8.GetString(FhirBundleWriter.Write(read.Before, read.Reports, bundle.Timestamp!.Value));
        Assert.Equal(jit, read.Json);
        return read.Json;
    }

    private static CreateRequisitionRequest Placed()
    {
        var draft = FhirBundleTests.Draft();
        draft.Place = true;
        return draft;
    }

    private async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestCaller.Token(_team, CallerRole.Clinician));
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
