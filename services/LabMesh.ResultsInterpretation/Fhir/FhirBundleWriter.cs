using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hl7.Fhir.Introspection;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Specification;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ResultsInterpretation.Domain;
using ContractRequisition = LabMesh.Contracts.Requisition.V1.Requisition;
using ContractServiceRequest = LabMesh.Contracts.ServiceRequest.V1.ServiceRequest;
using FhirServiceRequest = Hl7.Fhir.Model.ServiceRequest;

namespace LabMesh.ResultsInterpretation.Fhir;

/// <summary>
/// A requisition and its reports as a FHIR R4 Bundle (type <c>collection</c>), built with the Firely SDK
/// and written as FHIR JSON. Every entry's <c>fullUrl</c> is <c>urn:uuid:&lt;its id&gt;</c> and every
/// reference points at one, so the Bundle resolves on its own.
/// </summary>
/// <remarks>
/// <code>
/// LabMesh                          FHIR R4
/// requisition                      Bundle.identifier; ServiceRequest.requisition
/// patient                          Patient: its id as an identifier only (no name, no birth date, no sex)
/// ordering provider                Practitioner: identifiers (LabMesh id, NPI) and name
/// service request                  ServiceRequest (id = the service request's id): status active / completed /
///                                  revoked (unknown before one is set), intent order, code = the test code
/// its task_business_status         Task (intent order, focus = the ServiceRequest, owner = the partner):
///                                  businessStatus = the seed's word (ORDER_CONFIRMED, ...); status:
///                                    none yet → requested, ORDER_CONFIRMED → accepted,
///                                    APPOINTMENT_ATTENDED / PARTIAL_RESULTS_READY → in-progress,
///                                    FULL_RESULTS_READY or a completed request → completed,
///                                    an *_ISSUE → failed, a revoked request → cancelled
/// report version                   DiagnosticReport (category LAB, code LOINC 11502-2, basedOn its service
///                                  requests): version 1 partial → partial, final → final; a later version →
///                                  corrected when its markers differ from the version before, else amended
/// marker                           Observation (category laboratory, code = the slug): value as a Quantity
///                                  (UCUM system and code when the unit is UCUM; a bound as its comparator) or
///                                  a string; referenceRange from min/max; interpretation (v3
///                                  ObservationInterpretation) from the reading:
///                                    critical → HH above the range, LL below it, AA otherwise
///                                    abnormal → H above, L below, A otherwise
///                                    normal → N; not read → none
///                                  status final, or the report version's amended / corrected
/// </code>
/// <para>Ids that LabMesh does not have as UUIDs (tasks, report versions, markers, the patient, the
/// provider) are derived from stable names (SHA-256), so reading the same data twice gives the same Bundle.</para>
/// </remarks>
public static class FhirBundleWriter
{
    /// <summary>What the Bundle's JSON is.</summary>
    public const string ContentType = "application/fhir+json; fhirVersion=4.0";

    public const string RequisitionSystem = "urn:labmesh:requisition";
    public const string ServiceRequestSystem = "urn:labmesh:service-request";
    public const string TestCodeSystem = "urn:labmesh:test-code";
    public const string TaskBusinessStatusSystem = "urn:labmesh:task-business-status";
    public const string PartnerSystem = "urn:labmesh:partner";
    public const string ReportSystem = "urn:labmesh:report";
    public const string ReportVersionSystem = "urn:labmesh:report-version";
    public const string MarkerSystem = "urn:labmesh:marker";
    public const string PatientSystem = "urn:labmesh:patient";
    public const string ProviderSystem = "urn:labmesh:provider";
    public const string NpiSystem = "http://hl7.org/fhir/sid/us-npi";
    public const string UcumSystem = "http://unitsofmeasure.org";
    public const string InterpretationSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

    // Firely's own JSON writer, straight into a Utf8JsonWriter: not System.Text.Json's JsonSerializer with Firely's converter,
    // which builds its contracts by reflection (RequiresUnreferencedCode and RequiresDynamicCode) to reach the same writer.
    // Its model inspector imports the two model assemblies by name: ModelInfo.ModelInspector (ModelInspector.ForAssembly) finds
    // them with Assembly.GetReferencedAssemblies, which throws PlatformNotSupportedException in the Native AOT executable.
    // FhirBundleTests checks that the JSON is what ModelInfo.ModelInspector writes of the same Bundle.
    private static readonly Lazy<BaseFhirJsonSerializer> Json = new(() =>
    {
        var inspector = new ModelInspector(FhirRelease.R4);
        inspector.Import(typeof(Base).Assembly);
        inspector.Import(typeof(ModelInfo).Assembly);
        return new BaseFhirJsonSerializer(inspector);
    });

    /// <summary>
    /// The Bundle of <paramref name="requisition"/> (read with its service requests) and the report versions of one
    /// page, as FHIR JSON (UTF-8 bytes). <paramref name="before"/> holds, by report id, the version just before the
    /// first of that report on this page when an earlier page had it (it decides amended or corrected, and is not
    /// written); <paramref name="next"/> is the Bundle's <c>next</c> link, null on the last page.
    /// </summary>
    public static byte[] Write(
        ContractRequisition requisition, IReadOnlyList<Report> reports, DateTimeOffset now,
        IReadOnlyDictionary<string, Report>? before = null, string? next = null)
    {
        ArgumentNullException.ThrowIfNull(requisition);
        ArgumentNullException.ThrowIfNull(reports);
        // Compact, not indented (the writer's defaults, as JsonSerializer's): the JSON travels in a string field, and
        // indentation would take a third of a page's budget.
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Json.Value.Serialize(Build(requisition, reports, now, before, next), writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static Bundle Build(
        ContractRequisition requisition, IReadOnlyList<Report> reports, DateTimeOffset now,
        IReadOnlyDictionary<string, Report>? before, string? next)
    {
        var bundle = new Bundle
        {
            Type = Bundle.BundleType.Collection,
            Identifier = new Identifier(RequisitionSystem, requisition.Id),
            Timestamp = now,
        };
        if (next is not null)
        {
            bundle.Link.Add(new Bundle.LinkComponent { Relation = "next", Url = next });
        }

        var patient = new Patient { Id = Derived("Patient", requisition.Patient?.Id ?? requisition.Id) };
        if (!string.IsNullOrEmpty(requisition.Patient?.Id))
        {
            patient.Identifier.Add(new Identifier(PatientSystem, requisition.Patient.Id));
        }
        Add(bundle, patient);
        var subject = Ref(patient);

        ResourceReference? requester = null;
        if (requisition.OrderingProvider is { } provider && (provider.Id.Length > 0 || provider.Name.Length > 0 || provider.Npi.Length > 0))
        {
            var practitioner = new Practitioner { Id = Derived("Practitioner", provider.Id.Length > 0 ? provider.Id : provider.Npi + "|" + provider.Name) };
            if (provider.Id.Length > 0)
            {
                practitioner.Identifier.Add(new Identifier(ProviderSystem, provider.Id));
            }
            if (provider.Npi.Length > 0)
            {
                practitioner.Identifier.Add(new Identifier(NpiSystem, provider.Npi));
            }
            if (provider.Name.Length > 0)
            {
                practitioner.Name.Add(new HumanName { Text = provider.Name });
            }
            Add(bundle, practitioner);
            requester = Ref(practitioner);
        }

        var serviceRequests = new Dictionary<string, FhirServiceRequest>(StringComparer.Ordinal);
        foreach (var sr in requisition.ServiceRequests.OrderBy(s => s.Line))
        {
            var resource = ServiceRequestOf(requisition, sr, subject, requester);
            serviceRequests[sr.Id] = resource;
            Add(bundle, resource);
            Add(bundle, TaskOf(sr, resource, subject));
        }

        var previous = before is null ? new Dictionary<string, Report>(StringComparer.Ordinal) : new Dictionary<string, Report>(before, StringComparer.Ordinal);
        foreach (var report in reports.OrderBy(r => r.CreateTime?.ToDateTimeOffset()).ThenBy(r => r.Version))
        {
            var status = ReportStatusOf(report, previous.GetValueOrDefault(report.Id));
            previous[report.Id] = report;
            var diagnostic = new DiagnosticReport
            {
                Id = Derived("DiagnosticReport", $"{report.Id}/{report.Version}"),
                Status = status,
                Category = [new CodeableConcept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
                Code = new CodeableConcept("http://loinc.org", "11502-2", "Laboratory report", "Laboratory report"),
                Subject = subject,
            };
            diagnostic.Identifier.Add(new Identifier(ReportSystem, report.Id));
            diagnostic.Identifier.Add(new Identifier(ReportVersionSystem, $"{report.Id}/{report.Version}"));
            foreach (var id in report.ServiceRequestIds)
            {
                if (serviceRequests.TryGetValue(id, out var sr))
                {
                    diagnostic.BasedOn.Add(Ref(sr));
                }
            }
            if (report.Metadata is { } metadata)
            {
                if (IsDate(metadata.DateCollected))
                {
                    diagnostic.Effective = new FhirDateTime(metadata.DateCollected);
                }
                if (metadata.Laboratory.Length > 0)
                {
                    diagnostic.Performer.Add(new ResourceReference { Display = metadata.Laboratory });
                }
            }
            if (report.CreateTime is { } created)
            {
                diagnostic.Issued = created.ToDateTimeOffset();
            }

            for (var i = 0; i < report.Results.Count; i++)
            {
                var observation = ObservationOf(report, i, status, subject, serviceRequests);
                diagnostic.Result.Add(Ref(observation));
                Add(bundle, observation);
            }
            Add(bundle, diagnostic);
        }
        return bundle;
    }

    private static FhirServiceRequest ServiceRequestOf(
        ContractRequisition requisition, ContractServiceRequest sr, ResourceReference subject, ResourceReference? requester)
    {
        var test = sr.Line >= 0 && sr.Line < requisition.Tests.Count ? requisition.Tests[sr.Line] : null;
        var display = test is { Description.Length: > 0 } ? test.Description : sr.Code;
        var resource = new FhirServiceRequest
        {
            Id = Guid.TryParse(sr.Id, out var id) ? id.ToString() : Derived("ServiceRequest", sr.Id),
            Status = sr.Status switch
            {
                ServiceRequestStatus.Active => RequestStatus.Active,
                ServiceRequestStatus.Completed => RequestStatus.Completed,
                ServiceRequestStatus.Revoked => RequestStatus.Revoked,
                _ => RequestStatus.Unknown,
            },
            Intent = RequestIntent.Order,
            Requisition = new Identifier(RequisitionSystem, requisition.Id),
            Code = new CodeableConcept(TestCodeSystem, sr.Code, display, display),
            Subject = subject,
            Requester = requester,
        };
        resource.Identifier.Add(new Identifier(ServiceRequestSystem, sr.Id));
        resource.Category.Add(new CodeableConcept("http://snomed.info/sct", "108252007", "Laboratory procedure"));
        if (requisition.Lab.Length > 0)
        {
            resource.Performer.Add(new ResourceReference { Display = requisition.Lab });
        }
        if (sr.CreateTime is { } created)
        {
            resource.AuthoredOnElement = new FhirDateTime(created.ToDateTimeOffset());
        }
        return resource;
    }

    private static Hl7.Fhir.Model.Task TaskOf(ContractServiceRequest sr, FhirServiceRequest focus, ResourceReference subject)
    {
        var task = new Hl7.Fhir.Model.Task
        {
            Id = Derived("Task", sr.Id),
            Status = TaskStatusOf(sr),
            Intent = Hl7.Fhir.Model.Task.TaskIntent.Order,
            Focus = Ref(focus),
            For = subject,
        };
        task.Identifier.Add(new Identifier(ServiceRequestSystem, sr.Id));
        task.BasedOn.Add(Ref(focus));
        if (sr.TaskBusinessStatus != TaskBusinessStatus.Unspecified)
        {
            var word = ServiceRequestReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.EnumDescriptor>("TaskBusinessStatus").FindValueByNumber((int)sr.TaskBusinessStatus).Name;
            task.BusinessStatus = new CodeableConcept(TaskBusinessStatusSystem, word, word, word);
        }
        if (sr.TaskDescription.Length > 0)
        {
            task.Description = sr.TaskDescription;
        }
        if (sr.PartnerId.Length > 0)
        {
            task.Owner = new ResourceReference { Identifier = new Identifier(PartnerSystem, sr.PartnerId) };
        }
        if (sr.CreateTime is { } created)
        {
            task.AuthoredOnElement = new FhirDateTime(created.ToDateTimeOffset());
        }
        if (sr.UpdateTime is { } updated)
        {
            task.LastModifiedElement = new FhirDateTime(updated.ToDateTimeOffset());
        }
        return task;
    }

    private static Hl7.Fhir.Model.Task.TaskStatus TaskStatusOf(ContractServiceRequest sr) => (sr.Status, sr.TaskBusinessStatus) switch
    {
        (ServiceRequestStatus.Revoked, _) => Hl7.Fhir.Model.Task.TaskStatus.Cancelled,
        (_, TaskBusinessStatus.AppointmentIssue or TaskBusinessStatus.ResultsIssue or TaskBusinessStatus.OrderIssue) => Hl7.Fhir.Model.Task.TaskStatus.Failed,
        (ServiceRequestStatus.Completed, _) or (_, TaskBusinessStatus.FullResultsReady) => Hl7.Fhir.Model.Task.TaskStatus.Completed,
        (_, TaskBusinessStatus.AppointmentAttended or TaskBusinessStatus.PartialResultsReady) => Hl7.Fhir.Model.Task.TaskStatus.InProgress,
        (_, TaskBusinessStatus.OrderConfirmed) => Hl7.Fhir.Model.Task.TaskStatus.Accepted,
        _ => Hl7.Fhir.Model.Task.TaskStatus.Requested,
    };

    private static DiagnosticReport.DiagnosticReportStatus ReportStatusOf(Report report, Report? previous)
    {
        if (report.Version <= 1 || previous is null)
        {
            return report.Metadata?.Status == ReportStatus.Partial
                ? DiagnosticReport.DiagnosticReportStatus.Partial
                : DiagnosticReport.DiagnosticReportStatus.Final;
        }
        return report.Results.Equals(previous.Results)
            ? DiagnosticReport.DiagnosticReportStatus.Amended
            : DiagnosticReport.DiagnosticReportStatus.Corrected;
    }

    private static Observation ObservationOf(
        Report report, int index, DiagnosticReport.DiagnosticReportStatus reportStatus, ResourceReference subject,
        Dictionary<string, FhirServiceRequest> serviceRequests)
    {
        var marker = report.Results[index];
        var name = marker.Name.Length > 0 ? marker.Name : marker.Slug;
        var observation = new Observation
        {
            Id = Derived("Observation", $"{report.Id}/{report.Version}/{index}"),
            Status = reportStatus switch
            {
                DiagnosticReport.DiagnosticReportStatus.Amended => ObservationStatus.Amended,
                DiagnosticReport.DiagnosticReportStatus.Corrected => ObservationStatus.Corrected,
                _ => ObservationStatus.Final,
            },
            Code = new CodeableConcept(MarkerSystem, marker.Slug, name, name),
            Subject = subject,
        };
        observation.Category.Add(new CodeableConcept("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory"));
        if (marker.ServiceRequestId.Length > 0 && serviceRequests.TryGetValue(marker.ServiceRequestId, out var sr))
        {
            observation.BasedOn.Add(Ref(sr));
        }
        if (marker.Timestamp is { } taken)
        {
            observation.Effective = new FhirDateTime(taken.ToDateTimeOffset());
        }
        else if (IsDate(report.Metadata?.DateCollected))
        {
            observation.Effective = new FhirDateTime(report.Metadata!.DateCollected);
        }
        if (report.CreateTime is { } created)
        {
            observation.Issued = created.ToDateTimeOffset();
        }

        observation.Value = ValueOf(marker);
        if (marker.HasMinRangeValue || marker.HasMaxRangeValue)
        {
            var range = new Observation.ReferenceRangeComponent();
            if (marker.HasMinRangeValue && Quantity(marker.MinRangeValue, marker.Unit) is { } low)
            {
                range.Low = low;
            }
            if (marker.HasMaxRangeValue && Quantity(marker.MaxRangeValue, marker.Unit) is { } high)
            {
                range.High = high;
            }
            if (range.Low is not null || range.High is not null)
            {
                observation.ReferenceRange.Add(range);
            }
        }
        if (InterpretationOf(marker.Reading) is { } code)
        {
            observation.Interpretation.Add(new CodeableConcept(InterpretationSystem, code.Code, code.Display, code.Display));
        }
        if (marker.Notes.Length > 0)
        {
            observation.Note.Add(new Annotation { Text = new Markdown(marker.Notes) });
        }
        return observation;
    }

    /// <summary>The v3 ObservationInterpretation code of a reading, or null when the marker was not read.</summary>
    public static (string Code, string Display)? InterpretationOf(MarkerReading? reading) => reading?.Interpretation switch
    {
        Interpretation.Critical when reading.IsAboveMaxRange => ("HH", "Critical high"),
        Interpretation.Critical when reading.IsBelowMinRange => ("LL", "Critical low"),
        Interpretation.Critical => ("AA", "Critical abnormal"),
        Interpretation.Abnormal when reading.IsAboveMaxRange => ("H", "High"),
        Interpretation.Abnormal when reading.IsBelowMinRange => ("L", "Low"),
        Interpretation.Abnormal => ("A", "Abnormal"),
        Interpretation.Normal => ("N", "Normal"),
        _ => null,
    };

    private static DataType? ValueOf(Marker marker)
    {
        var value = MarkerValue.Of(marker);
        switch (value.Kind)
        {
            case MarkerValueKind.Number:
            case MarkerValueKind.Bound:
                if (Quantity(value.Number, marker.Unit) is { } quantity)
                {
                    quantity.Comparator = value.Operator switch
                    {
                        BoundOperator.LessThan => Hl7.Fhir.Model.Quantity.QuantityComparator.LessThan,
                        BoundOperator.LessThanOrEqual => Hl7.Fhir.Model.Quantity.QuantityComparator.LessOrEqual,
                        BoundOperator.GreaterThan => Hl7.Fhir.Model.Quantity.QuantityComparator.GreaterThan,
                        BoundOperator.GreaterThanOrEqual => Hl7.Fhir.Model.Quantity.QuantityComparator.GreaterOrEqual,
                        _ => null,
                    };
                    return quantity;
                }
                return new FhirString(marker.HasNumericValue ? marker.NumericValue.ToString("R", CultureInfo.InvariantCulture) : marker.TextValue);
            case MarkerValueKind.Text:
                return new FhirString(value.Text);
            default:
                return null;
        }
    }

    // A quantity in the marker's unit as written; with UCUM's system and code when the unit reads as UCUM.
    // Null for a number a FHIR decimal cannot hold.
    private static Hl7.Fhir.Model.Quantity? Quantity(double number, string unit)
    {
        if (!double.IsFinite(number) || Math.Abs(number) > 7.9e27)
        {
            return null;
        }
        var quantity = new Hl7.Fhir.Model.Quantity { Value = decimal.Parse(number.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture) };
        var trimmed = unit.Trim();
        if (trimmed.Length > 0)
        {
            quantity.Unit = trimmed;
        }
        var code = Units.UcumCode(Units.Normalize(unit));
        if (Ucum.IsUnit(code))
        {
            quantity.System = UcumSystem;
            quantity.Code = code;
        }
        return quantity;
    }

    private static bool IsDate(string? text) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _);

    private static void Add(Bundle bundle, Resource resource) =>
        bundle.Entry.Add(new Bundle.EntryComponent { FullUrl = "urn:uuid:" + resource.Id, Resource = resource });

    private static ResourceReference Ref(Resource resource) => new("urn:uuid:" + resource.Id);

    // A UUID from a stable name: the first 16 bytes of its SHA-256, marked as an RFC 9562 version 8 UUID.
    private static string Derived(string kind, string name)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(kind + "/" + name), hash);
        var bytes = hash[..16];
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x80);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true).ToString();
    }
}
