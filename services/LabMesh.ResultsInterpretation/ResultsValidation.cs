using System.Globalization;
using Google.Protobuf;
using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.Core.Errors;
using LabMesh.Core.Validation;

namespace LabMesh.ResultsInterpretation;

/// <summary>
/// Request checks beyond the markers' (<see cref="MarkerValidation"/>): every problem is collected, so a
/// caller fixes them in one round, and nothing is stored from a request that fails.
/// </summary>
public static class ResultsValidation
{
    public const int MaxServiceRequests = 50;
    public const int MaxReasonLength = 2000;
    public const int MaxShareNoteLength = 4000;

    /// <summary>The largest report accepted, encoded; far below the 4 MiB message limit.</summary>
    public const int MaxReportBytes = 1024 * 1024;

    public static void Validate(SubmitResultsRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var violations = new List<FieldViolation>();
        RequestIds.Check(request.RequestId, violations);
        Ids.Check(request.RequisitionId, "requisition_id", violations);
        if (request.ServiceRequestIds.Count > MaxServiceRequests)
        {
            violations.Add(new FieldViolation("service_request_ids", $"at most {MaxServiceRequests}."));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < request.ServiceRequestIds.Count; i++)
        {
            var id = request.ServiceRequestIds[i];
            Ids.Check(id, $"service_request_ids[{i}]", violations);
            if (!seen.Add(id))
            {
                violations.Add(new FieldViolation($"service_request_ids[{i}]", $"'{id}' is listed twice."));
            }
        }

        Metadata(request.Metadata, amendment: false, violations);
        MarkerValidation.Validate(request.Results, "results", violations);
        MarkersAnswer(request.Results, request.ServiceRequestIds, violations);
        Size(request, violations);
        Throw(violations);
    }

    public static void Validate(AmendResultsRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var violations = new List<FieldViolation>();
        RequestIds.Check(request.RequestId, violations);
        Ids.Check(request.ReportId, "report_id", violations);
        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > MaxReasonLength)
        {
            violations.Add(new FieldViolation("reason", $"required, at most {MaxReasonLength} characters: say why the report is corrected."));
        }

        if (request.ExpectedVersion < 0)
        {
            violations.Add(new FieldViolation("expected_version", "must be 0 (no check) or the version being corrected."));
        }

        Metadata(request.Metadata, amendment: true, violations);
        MarkerValidation.Validate(request.Results, "results", violations);
        Size(request, violations);
        Throw(violations);
    }

    /// <summary>As SubmitResults checks markers, and the same size bound: the answer (the markers with their readings) stays far below the message limit.</summary>
    public static void Validate(InterpretMarkersRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var violations = new List<FieldViolation>();
        MarkerValidation.Validate(request.Results, "results", violations);
        Size(request, violations);
        Throw(violations);
    }

    /// <summary>Every marker that names a service request names one the report answers.</summary>
    public static void EnsureMarkersAnswer(IReadOnlyList<Marker> markers, IReadOnlyList<string> serviceRequestIds)
    {
        var violations = new List<FieldViolation>();
        MarkersAnswer(markers, serviceRequestIds, violations);
        Throw(violations);
    }

    public static void Throw(List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }
    }

    private static void Metadata(ReportMetadata? metadata, bool amendment, List<FieldViolation> violations)
    {
        if (metadata is null)
        {
            violations.Add(new FieldViolation("metadata", "required: at least the status (partial or final)."));
            return;
        }

        if (amendment ? metadata.Status == ReportStatus.Partial : metadata.Status is not (ReportStatus.Partial or ReportStatus.Final))
        {
            violations.Add(new FieldViolation("metadata.status", amendment
                ? "an amendment corrects a final report and is final: leave it unset or REPORT_STATUS_FINAL."
                : "must be REPORT_STATUS_PARTIAL or REPORT_STATUS_FINAL."));
        }

        Length(metadata.Laboratory, "metadata.laboratory", 200, violations);
        Length(metadata.SpecimenNumber, "metadata.specimen_number", 64, violations);
        Length(metadata.CliaNumber, "metadata.clia_number", 32, violations);
        Length(metadata.Provider, "metadata.provider", 200, violations);
        Date(metadata.DateCollected, "metadata.date_collected", violations);
        Date(metadata.DateReceived, "metadata.date_received", violations);
        Date(metadata.DateReported, "metadata.date_reported", violations);
    }

    private static void MarkersAnswer(IReadOnlyList<Marker> markers, IReadOnlyList<string> serviceRequestIds, List<FieldViolation> violations)
    {
        for (var i = 0; i < markers.Count; i++)
        {
            var id = markers[i].ServiceRequestId;
            if (!string.IsNullOrEmpty(id) && !serviceRequestIds.Contains(id))
            {
                violations.Add(new FieldViolation($"results[{i}].service_request_id", $"'{id}' is not one of the report's service_request_ids."));
            }
        }
    }

    private static void Size(IMessage request, List<FieldViolation> violations)
    {
        var size = request.CalculateSize();
        if (size > MaxReportBytes)
        {
            violations.Add(new FieldViolation("results",
                $"the report is {size.ToString(CultureInfo.InvariantCulture)} bytes encoded; at most {MaxReportBytes.ToString(CultureInfo.InvariantCulture)}."));
        }
    }

    private static void Length(string value, string field, int max, List<FieldViolation> violations)
    {
        if (value.Length > max)
        {
            violations.Add(new FieldViolation(field, $"at most {max.ToString(CultureInfo.InvariantCulture)} characters."));
        }
    }

    private static void Date(string value, string field, List<FieldViolation> violations)
    {
        if (value.Length > 0 && !DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            violations.Add(new FieldViolation(field, "an ISO 8601 date, YYYY-MM-DD."));
        }
    }
}
