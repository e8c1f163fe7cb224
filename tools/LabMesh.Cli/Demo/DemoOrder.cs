using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;

namespace LabMesh.Cli.Demo;

/// <summary>
/// The demo's own test data: an at-home phlebotomy order for a basic metabolic panel and a complete blood
/// count, its walk through seed 004's statuses, and its result reports. No real patient: an id only.
/// </summary>
internal static class DemoOrder
{
    public const string Panel = "BMP";
    public const string BloodCount = "CBC";
    public const string Clinician = "dr.demo@clinic.example";
    public const string Lab = "LabMesh Demo Lab";

    /// <summary>The order events after placing, the modality's normal path up to the draw.</summary>
    public static readonly string[] BeforeResults =
    [
        "received.at_home_phlebotomy.requisition_created",
        "collecting_sample.at_home_phlebotomy.appointment_scheduled",
        "collecting_sample.at_home_phlebotomy.draw_completed",
    ];

    public const string PartialResults = "sample_with_lab.at_home_phlebotomy.partial_results";
    public const string Completed = "completed.at_home_phlebotomy.completed";

    public static CreateRequisitionRequest Draft(string runId) => new()
    {
        RequestId = $"demo-{runId}",
        Patient = new Patient { Id = $"demo-patient-{runId}" },
        OrderingProvider = new Provider { Id = "demo-clinician", Name = "Dr. Demo" },
        Lab = Lab,
        Modality = TestModality.AtHomePhlebotomy,
        Tests =
        {
            new OrderedTest { Code = Panel, Description = "Basic metabolic panel", PartnerId = "lab-demo" },
            new OrderedTest { Code = BloodCount, Description = "Complete blood count", PartnerId = "lab-demo" },
        },
        Place = false,
    };

    /// <summary>The lab calls ahead with the panel's potassium: critical high (the critical-limit catalog's high is 6.2 mmol/L).</summary>
    public static SubmitResultsRequest CriticalPartial(string runId, string requisitionId, string panel) => new()
    {
        RequestId = $"demo-{runId}-partial",
        RequisitionId = requisitionId,
        ServiceRequestIds = { panel },
        Metadata = Metadata(runId, ReportStatus.Partial),
        Results =
        {
            Marker("Potassium", "potassium", "mmol/L", 6.8, 3.5, 5.1, panel),
            Marker("Sodium", "sodium", "mmol/L", 138, 135, 145, panel),
        },
    };

    /// <summary>Every marker of both tests, from a redrawn sample: potassium back in range, glucose high (abnormal).</summary>
    public static SubmitResultsRequest Final(string runId, string requisitionId, string panel, string bloodCount) => new()
    {
        RequestId = $"demo-{runId}-final",
        RequisitionId = requisitionId,
        ServiceRequestIds = { panel, bloodCount },
        Metadata = Metadata(runId, ReportStatus.Final),
        Results = { FinalMarkers(panel, bloodCount, glucoseHigh: 99) },
    };

    /// <summary>The final report again, with the glucose reference range corrected for a non-fasting sample.</summary>
    public static AmendResultsRequest Amendment(string runId, string reportId, string panel, string bloodCount) => new()
    {
        RequestId = $"demo-{runId}-amendment",
        ReportId = reportId,
        Reason = "Glucose reference range corrected: the sample was not fasting.",
        Metadata = Metadata(runId, ReportStatus.Final),
        Results = { FinalMarkers(panel, bloodCount, glucoseHigh: 140) },
        ExpectedVersion = 1,
    };

    private static ReportMetadata Metadata(string runId, ReportStatus status)
    {
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        return new ReportMetadata
        {
            Laboratory = Lab,
            SpecimenNumber = $"DEMO-{runId}",
            Provider = "Dr. Demo",
            DateCollected = today,
            DateReceived = today,
            DateReported = today,
            Status = status,
        };
    }

    private static Marker[] FinalMarkers(string panel, string bloodCount, double glucoseHigh) =>
    [
        Marker("Sodium", "sodium", "mmol/L", 139, 135, 145, panel),
        Marker("Potassium", "potassium", "mmol/L", 4.6, 3.5, 5.1, panel),
        Marker("Chloride", "chloride", "mmol/L", 102, 98, 107, panel),
        Marker("Carbon dioxide", "co2", "mmol/L", 25, 22, 29, panel),
        Marker("Urea nitrogen", "bun", "mg/dL", 14, 7, 20, panel),
        Marker("Creatinine", "creatinine", "mg/dL", 0.9, 0.6, 1.2, panel),
        Marker("Glucose", "glucose", "mg/dL", 112, 70, glucoseHigh, panel),
        Marker("Calcium", "calcium", "mg/dL", 9.4, 8.6, 10.3, panel),
        Marker("White blood cells", "wbc", "x10^9/L", 6.1, 4.0, 11.0, bloodCount),
        Marker("Hemoglobin", "hemoglobin", "g/dL", 13.8, 12.0, 16.0, bloodCount),
        Marker("Hematocrit", "hematocrit", "%", 41, 36, 46, bloodCount),
        Marker("Platelets", "platelets", "x10^9/L", 250, 150, 400, bloodCount),
    ];

    private static Marker Marker(string name, string slug, string unit, double value, double min, double max, string serviceRequestId) => new()
    {
        Name = name,
        Slug = slug,
        Unit = unit,
        NumericValue = value,
        MinRangeValue = min,
        MaxRangeValue = max,
        ServiceRequestId = serviceRequestId,
    };
}
