using System.Data.Common;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// Work that joins a store's write transactions, registered in the container (the audit log's record of the
/// mutating call in progress: <c>Audit.AuditWriteParticipant</c>) so that <see cref="Database"/> knows no one
/// that writes with it. <see cref="Database.WriteAsync{T}"/> calls it after the caller's work, before the commit.
/// </summary>
public interface IWriteParticipant
{
    /// <summary>
    /// Adds this participant's rows to <paramref name="transaction"/> on the store <paramref name="storeName"/>,
    /// and returns what to tell once the transaction has committed (true) or not (false); null when it had nothing to add.
    /// </summary>
    Task<Action<bool>?> JoinAsync(string storeName, DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken);
}
