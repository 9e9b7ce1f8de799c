using BigFS.Metadata.Model;
using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Metadata.Logic;

/// <summary>
/// One maintenance pass over the chunk map (design §5): replacement of unconfirmed replicas,
/// re-replication of Live chunks below goal, trimming of those above it, and two-phase garbage
/// collection. Decisions are made under the state lock with time from the TimeProvider; node
/// calls go through <see cref="IChunkNodeClient"/> outside the lock.
/// </summary>
public sealed class ChunkMaintenance(MetadataState state, ClusterLogic cluster, IChunkNodeClient nodes, ILogger logger)
{
    private sealed record DeleteCall(string ChunkId, string NodeId, string Address);
    private sealed record ReplicateCall(string ChunkId, NodeRecord Source, List<NodeTarget> Targets);
    private enum DeleteOutcome { Deleted, NotFound, Failed }

    private readonly MetadataState _s = state;
    private readonly Dictionary<(string Chunk, string Node), (int Attempts, long NextMs)> _deleteBackoff = [];
    private readonly Dictionary<string, NodeLiveness> _lastLiveness = new(StringComparer.Ordinal);
    /// <summary>
    /// When a copy from one node to another last failed. A holder that sends heartbeats may still
    /// not reach a target that does too (a partition that is not a clean split), so the next copy
    /// to that target comes from a holder that has not failed it, or failed it longest ago.
    /// </summary>
    private readonly Dictionary<(string Source, string Target), long> _failedCopies = [];

    /// <summary>How long re-replication leaves a chunk alone after its replica replacements ran out.</summary>
    private long ExhaustedPauseMs => 10 * (long)_s.Options.ReplicaConfirmationTimeout.TotalMilliseconds;

    public async Task RunOnceAsync(CancellationToken ct)
    {
        var replicate = new List<ReplicateCall>();
        var deletes = new List<DeleteCall>();
        Task durable;
        lock (_s.Sync)
        {
            var now = _s.NowMs;
            LogLivenessChanges();
            PlanReplicaTimeouts(now, replicate);
            PlanReReplication(now, replicate);
            PlanSurplusTrim(now, deletes);
            PlanGarbageCollection(now, deletes);
            durable = _s.CommitAsync();
        }
        // Phase 1 (DELETING marks, new PENDING copies) is durable before any node is asked to act.
        await durable.ConfigureAwait(false);

        if (deletes.Count > 0)
        {
            var outcomes = await Task.WhenAll(deletes.Select(d => DeleteAsync(d, ct))).ConfigureAwait(false);
            lock (_s.Sync)
            {
                for (var i = 0; i < deletes.Count; i++)
                    ApplyDelete(deletes[i], outcomes[i]);
                durable = _s.CommitAsync();
            }
            await durable.ConfigureAwait(false);
        }

        if (replicate.Count > 0)
        {
            var confirmed = await Task.WhenAll(replicate.Select(r => ReplicateAsync(r, ct))).ConfigureAwait(false);
            lock (_s.Sync)
            {
                var now = _s.NowMs;
                for (var i = 0; i < replicate.Count; i++)
                {
                    foreach (var node in confirmed[i])
                        cluster.Confirm(replicate[i].ChunkId, node);
                    foreach (var target in replicate[i].Targets)
                    {
                        var pair = (replicate[i].Source.Id, target.NodeId);
                        if (confirmed[i].Contains(target.NodeId))
                            _failedCopies.Remove(pair);
                        else
                            _failedCopies[pair] = now;
                    }
                }
                durable = _s.CommitAsync();
            }
            await durable.ConfigureAwait(false);
        }
    }

    private void LogLivenessChanges()
    {
        foreach (var n in _s.Nodes.Values)
        {
            var now = _s.LivenessOf(n);
            if (_lastLiveness.TryGetValue(n.Id, out var was) && was != now)
                logger.LogWarning("Storage node {NodeId} is now {State} (was {Previous})", n.Id, now, was);
            _lastLiveness[n.Id] = now;
        }
    }

    /// <summary>
    /// The holder to copy from: an Active node with an AVAILABLE copy, one that has not failed to
    /// copy to any of <paramref name="targets"/> before if there is one (else the one whose last
    /// failure is oldest), the primary among equals. Null when no holder is Active.
    /// </summary>
    private NodeRecord? ActiveSource(ChunkRecord chunk, IReadOnlyCollection<string> targets)
    {
        NodeRecord? best = null;
        var bestFailedAt = long.MaxValue;
        foreach (var c in chunk.Copies.OrderByDescending(c => c.Primary))
        {
            if (c.Status != CopyState.Available || !_s.Nodes.TryGetValue(c.NodeId, out var n) || _s.LivenessOf(n) != NodeLiveness.Active)
                continue;
            var failedAt = 0L;
            foreach (var target in targets)
                if (_failedCopies.TryGetValue((n.Id, target), out var at))
                    failedAt = Math.Max(failedAt, at);
            if (failedAt < bestFailedAt)
                (best, bestFailedAt) = (n, failedAt);
        }
        return best;
    }

    /// <summary>Designates <paramref name="count"/> new PENDING copies and the holder that copies to them; null (nothing designated) when there is none.</summary>
    private ReplicateCall? PlanCopies(ChunkRecord chunk, int count, IReadOnlyCollection<string> exclude)
    {
        if (ActiveSource(chunk, []) is null)
            return null;
        var targets = cluster.Designate(chunk, count, exclude);
        if (targets.Count == 0)
            return null;
        var source = ActiveSource(chunk, targets.ConvertAll(t => t.Id))!;
        return new ReplicateCall(chunk.Id, source, targets.ConvertAll(t => cluster.TargetOf(t.Id)));
    }

    /// <summary>A PENDING copy not confirmed in time is replaced by another node, a bounded number of times.</summary>
    private void PlanReplicaTimeouts(long now, List<ReplicateCall> calls)
    {
        var timeout = (long)_s.Options.ReplicaConfirmationTimeout.TotalMilliseconds;
        foreach (var chunk in _s.Chunks.Values)
        {
            // Scans every chunk under the lock: keep the common case allocation-free.
            if (!chunk.Copies.Exists(c => c.Status == CopyState.Pending))
                continue;
            var expired = chunk.Copies.Where(c => c.Status == CopyState.Pending && !c.Primary && now - c.DesignatedMs > timeout).ToList();
            foreach (var copy in expired)
            {
                NoteUnconfirmedCopy(chunk, copy, now);
                chunk.Copies.Remove(copy);
                _s.MarkChunk(chunk.Id);
                if (chunk.State == ChunkState.Garbage)
                    continue;
                if (chunk.ReplacementCount >= _s.Options.MaxReplicaConfirmationRetries)
                {
                    if (chunk.ReplacementsExhaustedMs == 0)
                    {
                        chunk.ReplacementsExhaustedMs = now;
                        logger.LogWarning("Chunk {ChunkId}: replica on {NodeId} never confirmed and replacements exhausted", chunk.Id, copy.NodeId);
                    }
                    continue;
                }
                if (ActiveSource(chunk, []) is null)
                    continue;
                chunk.ReplacementCount++;
                if (PlanCopies(chunk, 1, exclude: [copy.NodeId]) is { } call)
                {
                    logger.LogInformation("Chunk {ChunkId}: replica on {Old} not confirmed in time, replaced by {New} (copied from {Source})",
                        chunk.Id, copy.NodeId, call.Targets[0].NodeId, call.Source.Id);
                    calls.Add(call);
                }
            }
        }
    }

    /// <summary>
    /// A PENDING copy that timed out with no failed copy to its node recorded since it was
    /// designated was the registration's, which the primary copies: that counts as the primary's failure.
    /// </summary>
    private void NoteUnconfirmedCopy(ChunkRecord chunk, CopyRecord copy, long now)
    {
        if (chunk.Copies.Find(c => c.Primary) is not { } primary)
            return;
        foreach (var ((_, target), at) in _failedCopies)
            if (target == copy.NodeId && at >= copy.DesignatedMs)
                return;
        _failedCopies[(primary.NodeId, copy.NodeId)] = now;
    }

    /// <summary>Live chunks with fewer healthy copies than their goal get new PENDING copies pulled from a holder.</summary>
    private void PlanReReplication(long now, List<ReplicateCall> calls)
    {
        foreach (var chunk in _s.Chunks.Values)
        {
            if (chunk.State != ChunkState.Live)
                continue;
            var healthy = _s.HealthyCopies(chunk);
            var pending = chunk.Copies.Count(c => c.Status == CopyState.Pending);
            var missing = chunk.Goal - healthy - pending;
            if (missing <= 0)
                continue;
            if (chunk.ReplacementsExhaustedMs != 0)
            {
                if (now - chunk.ReplacementsExhaustedMs < ExhaustedPauseMs)
                    continue;
                chunk.ReplacementsExhaustedMs = 0;
                chunk.ReplacementCount = 0;
                _s.MarkChunk(chunk.Id);
            }
            if (PlanCopies(chunk, missing, exclude: []) is not { } call)
                continue;
            logger.LogInformation("Chunk {ChunkId} below goal ({Healthy}/{Goal}): replicating to {Targets} from {Source}",
                chunk.Id, healthy, chunk.Goal, string.Join(",", call.Targets.Select(t => t.NodeId)), call.Source.Id);
            calls.Add(call);
        }
    }

    /// <summary>
    /// Phase 1: every AVAILABLE copy of a garbage chunk becomes DELETING (persisted before phase 2).
    /// Phase 2 plan: ask the primary always and replicas only when DELETING; PENDING copies are
    /// left alone. Chunks with no copies left are removed.
    /// </summary>
    private void PlanGarbageCollection(long now, List<DeleteCall> calls)
    {
        var grace = (long)_s.Options.UncommittedChunkGrace.TotalMilliseconds;
        // Open files are known from sessions, which live in memory: after a restart, mounts get one
        // lease (or the grace, if shorter) to register theirs again before uncommitted chunks are judged.
        var opensKnown = now - _s.StartedMs > Math.Min(grace, (long)_s.Options.SessionLease.TotalMilliseconds);
        var candidates = _s.Chunks.Values
            .Where(c => c.State == ChunkState.Garbage || (c.State == ChunkState.Uncommitted && now - c.CreatedMs > grace
                // A file still open in a live session may be written for hours before its close commits these.
                && opensKnown && !_s.IsOpen(c.OwnerIno)))
            .ToList();
        foreach (var chunk in candidates)
        {
            if (chunk.State == ChunkState.Uncommitted)
            {
                logger.LogInformation("Chunk {ChunkId} was never committed; collecting it", chunk.Id);
                chunk.State = ChunkState.Garbage;
                _s.MarkChunk(chunk.Id);
            }
            if (chunk.State != ChunkState.Garbage)
                continue;
            foreach (var copy in chunk.Copies.Where(c => c.Status == CopyState.Available))
            {
                copy.Status = CopyState.Deleting;
                _s.MarkChunk(chunk.Id);
            }
            foreach (var copy in chunk.Copies)
            {
                // The primary always; a replica only when DELETING (PENDING replicas are left alone).
                if (copy.Primary || copy.Status == CopyState.Deleting)
                    AskToDelete(chunk, copy, now, calls);
            }
            if (chunk.Copies.Count == 0)
                RemoveChunk(chunk.Id);
        }
    }

    /// <summary>
    /// A Live chunk with more AVAILABLE copies on active nodes than its goal sheds the surplus, two
    /// phases like garbage: the copies become DELETING (durable before phase 2), then their nodes
    /// are asked to delete them. Surplus comes from a node back after it was counted dead (its
    /// chunks were copied elsewhere meanwhile) or a lowered goal. Never while a copy is PENDING,
    /// never the primary, and from the fullest nodes first.
    /// </summary>
    private void PlanSurplusTrim(long now, List<DeleteCall> calls)
    {
        foreach (var chunk in _s.Chunks.Values)
        {
            if (chunk.State != ChunkState.Live)
                continue;
            // Scans every chunk under the lock: keep the common case allocation-free.
            int healthy = 0, deleting = 0, pending = 0;
            foreach (var c in chunk.Copies)
            {
                if (c.Status == CopyState.Deleting) deleting++;
                else if (c.Status == CopyState.Pending) pending++;
                else if (ActiveNode(c.NodeId) is not null) healthy++;
            }
            if (pending == 0 && chunk.Goal > 0 && healthy > chunk.Goal)
            {
                var surplus = chunk.Copies
                    .Where(c => c.Status == CopyState.Available && !c.Primary && ActiveNode(c.NodeId) is not null)
                    .OrderBy(c => ActiveNode(c.NodeId)!.FreeBytes()).ThenBy(c => c.NodeId, StringComparer.Ordinal)
                    .Take(healthy - chunk.Goal).ToList();
                foreach (var copy in surplus)
                {
                    copy.Status = CopyState.Deleting;
                    deleting++;
                    _s.MarkChunk(chunk.Id);
                    logger.LogInformation("Chunk {ChunkId} above goal ({Healthy}/{Goal}): dropping the copy on {NodeId}",
                        chunk.Id, healthy, chunk.Goal, copy.NodeId);
                }
            }
            if (deleting == 0)
                continue;
            foreach (var copy in chunk.Copies)
                if (copy.Status == CopyState.Deleting)
                    AskToDelete(chunk, copy, now, calls);
        }
    }

    private NodeRecord? ActiveNode(string nodeId) =>
        _s.Nodes.TryGetValue(nodeId, out var n) && _s.LivenessOf(n) == NodeLiveness.Active ? n : null;

    /// <summary>Plans a delete of <paramref name="copy"/> on its node, unless its last attempt failed recently.</summary>
    private void AskToDelete(ChunkRecord chunk, CopyRecord copy, long now, List<DeleteCall> calls)
    {
        if (_deleteBackoff.TryGetValue((chunk.Id, copy.NodeId), out var b) && b.NextMs > now)
            return;
        if (_s.Nodes.TryGetValue(copy.NodeId, out var node))
            calls.Add(new DeleteCall(chunk.Id, copy.NodeId, node.Address));
        else
            BackOff(chunk.Id, copy.NodeId, now);
    }

    private async Task<DeleteOutcome> DeleteAsync(DeleteCall call, CancellationToken ct)
    {
        try
        {
            await nodes.DeleteChunkAsync(call.Address, call.ChunkId, ct).ConfigureAwait(false);
            return DeleteOutcome.Deleted;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return DeleteOutcome.NotFound;
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            logger.LogDebug(ex, "DeleteChunk {ChunkId} on {NodeId} failed", call.ChunkId, call.NodeId);
            return DeleteOutcome.Failed;
        }
    }

    private void ApplyDelete(DeleteCall call, DeleteOutcome outcome)
    {
        var now = _s.NowMs;
        if (!_s.Chunks.TryGetValue(call.ChunkId, out var chunk))
            return;
        var copy = chunk.CopyOn(call.NodeId);
        if (copy is null)
            return;
        var gone = outcome switch
        {
            DeleteOutcome.Deleted => true,
            // Timestamp guard: "not found" from a node we have not heard from lately may come from
            // a node that lost its disk mount or restarted empty; only trust it from a live node.
            DeleteOutcome.NotFound => _s.Nodes.TryGetValue(call.NodeId, out var node)
                && now - node.LastHeartbeatMs < _s.Options.TimestampHeuristicThreshold.TotalMilliseconds,
            _ => false,
        };
        if (!gone)
        {
            if (outcome == DeleteOutcome.NotFound)
                logger.LogInformation("Chunk {ChunkId}: NotFound from {NodeId} with a stale heartbeat; will retry", call.ChunkId, call.NodeId);
            BackOff(call.ChunkId, call.NodeId, now);
            return;
        }
        _deleteBackoff.Remove((call.ChunkId, call.NodeId));
        chunk.Copies.Remove(copy);
        _s.MarkChunk(chunk.Id);
        if (chunk.Copies.Count == 0)
            RemoveChunk(chunk.Id);
    }

    private void BackOff(string chunkId, string nodeId, long now)
    {
        var attempts = _deleteBackoff.TryGetValue((chunkId, nodeId), out var b) ? b.Attempts + 1 : 1;
        var delay = (long)_s.Options.CleanupInterval.TotalMilliseconds << Math.Min(attempts - 1, 6);
        _deleteBackoff[(chunkId, nodeId)] = (attempts, now + delay);
    }

    private void RemoveChunk(string chunkId)
    {
        _s.Chunks.Remove(chunkId);
        _s.MarkChunk(chunkId);
        foreach (var key in _deleteBackoff.Keys.Where(k => k.Chunk == chunkId).ToList())
            _deleteBackoff.Remove(key);
        logger.LogDebug("Chunk {ChunkId} collected", chunkId);
    }

    private async Task<IReadOnlyList<string>> ReplicateAsync(ReplicateCall call, CancellationToken ct)
    {
        try
        {
            return await nodes.ReplicateChunkAsync(call.Source.Address, call.ChunkId, call.Targets, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            // The PENDING copies stay; they are replaced when their confirmation times out.
            logger.LogWarning(ex, "ReplicateChunk {ChunkId} via {Source} failed", call.ChunkId, call.Source.Address);
            return [];
        }
    }
}
