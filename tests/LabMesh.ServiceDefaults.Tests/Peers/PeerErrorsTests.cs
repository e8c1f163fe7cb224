using Grpc.Core;
using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>The one table of transient peer errors: every status code is in it, on purpose.</summary>
public sealed class PeerErrorsTests
{
    public static TheoryData<StatusCode, bool> Table => new()
    {
        { StatusCode.Unavailable, true },
        { StatusCode.DeadlineExceeded, true },
        { StatusCode.Cancelled, true },
        { StatusCode.ResourceExhausted, true },
        { StatusCode.Aborted, true },
        { StatusCode.Internal, false },
        { StatusCode.Unknown, false },
        { StatusCode.InvalidArgument, false },
        { StatusCode.NotFound, false },
        { StatusCode.AlreadyExists, false },
        { StatusCode.PermissionDenied, false },
        { StatusCode.Unauthenticated, false },
        { StatusCode.FailedPrecondition, false },
        { StatusCode.OutOfRange, false },
        { StatusCode.Unimplemented, false },
        { StatusCode.DataLoss, false },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void IsTransient_FollowsTheTable(StatusCode status, bool transient) =>
        Assert.Equal(transient, PeerErrors.IsTransient(new RpcException(new Status(status, "x"))));

    [Fact]
    public void Table_ClassifiesEveryFailureCode() =>
        Assert.Equal(
            Enum.GetValues<StatusCode>().Where(c => c != StatusCode.OK).Order(),
            Table.Select(row => (StatusCode)row[0]).Order());
}
