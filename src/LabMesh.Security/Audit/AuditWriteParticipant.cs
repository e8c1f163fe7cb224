using System.Data.Common;
using LabMesh.Messaging.Storage;

namespace LabMesh.Security.Audit;

/// <summary>
/// The audit record of the mutating call in progress (<see cref="AuditScope"/>), if it has none yet, inserted in
/// the first write transaction the handler commits on the call's store: the change and its record commit together.
/// </summary>
public sealed class AuditWriteParticipant : IWriteParticipant
{
    /// <inheritdoc />
    public async Task<Action<bool>?> JoinAsync(string storeName, DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var audit = AuditScope.Claim(storeName);
        if (audit is null)
        {
            return null;
        }

        try
        {
            await AuditLog.InsertAsync(connection, transaction, audit.Row, cancellationToken);
        }
        catch
        {
            audit.Written(committed: false);
            throw;
        }

        return audit.Written;
    }
}
