using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;

namespace LabMesh.Notification.Tests.Service;

/// <summary>Lab orders and reports the tests submit, in the services' own contracts.</summary>
public static class Orders
{
    public static async Task<Contracts.Requisition.V1.Requisition> PlaceAsync(RequisitionService.RequisitionServiceClient client, params string[] tests)
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Patient = new Patient { Id = "patient-7", GivenName = "Ada", FamilyName = "Lovelace", BirthDate = "1815-12-10", Sex = "female" },
            OrderingProvider = new Provider { Id = "prov-1", Name = "Dr. Jack Smith" },
            Lab = "LabCorp",
            Modality = TestModality.Testkit,
            Place = true,
        };
        request.Tests.AddRange(tests.Select(code => new OrderedTest { Code = code, PartnerId = "partner-1" }));
        return (await client.CreateRequisitionAsync(request, deadline: DateTime.UtcNow.AddSeconds(30))).Requisition;
    }

    /// <summary>A partial report on the first test with a critical potassium (6.9 mmol/L against 3.5-5.1).</summary>
    public static SubmitResultsRequest CriticalPotassium(Contracts.Requisition.V1.Requisition order)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = order.Id,
            Metadata = new ReportMetadata
            {
                Laboratory = "LabCorp",
                SpecimenNumber = "W4123LKB3VTL",
                Status = ReportStatus.Partial,
                DateCollected = "2026-11-20",
                DateReported = "2026-11-21",
            },
        };
        request.ServiceRequestIds.Add(order.ServiceRequests[0].Id);
        request.Results.Add(new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.9, MinRangeValue = 3.5, MaxRangeValue = 5.1 });
        return request;
    }

    /// <summary>A synthetic event of <paramref name="team"/>, for filling the bus directly.</summary>
    public static Event Synthetic(string team, string requisitionId, string type = "order.status_changed") => new()
    {
        Id = Guid.CreateVersion7().ToString(),
        Type = type,
        TeamId = team,
        RequisitionId = requisitionId,
        Source = "test",
        CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        OrderStatusChanged = new OrderStatusChanged { Status = "collecting_sample.testkit.transit_customer" },
    };
}
