using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Grpc.Tests.Catalog;

namespace LabMesh.Grpc.Tests.Reflection;

/// <summary>The Catalog test service: enough behaviour for a JSON call through reflection to return something.</summary>
public sealed class CatalogTestService : Catalog.Catalog.CatalogBase
{
    public override Task<GetItemResponse> GetItem(GetItemRequest request, ServerCallContext context)
    {
        if (request.Id != "42")
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"No item '{request.Id}'."));
        }
        return Task.FromResult(new GetItemResponse
        {
            Item = new Item
            {
                Id = request.Id,
                Title = "The Hitchhiker's Guide",
                Kind = Item.Types.Kind.Book,
                Dimensions = new Item.Types.Dimensions { WidthCm = 13, HeightCm = 20 },
                ShelfLife = Duration.FromTimeSpan(TimeSpan.FromDays(1)),
                Cents = 4200,
            },
            Availability = request.IfModifiedSince is null ? Availability.InStock : Availability.SoldOut,
        });
    }

    public override Task<Empty> Ping(Empty request, ServerCallContext context) => Task.FromResult(new Empty());
}
