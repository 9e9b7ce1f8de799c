using BigFS.Metadata.Model;
using BigFS.Protocol;
using Google.Protobuf;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Logic;

/// <summary>
/// Runs each namespace change that carries a <see cref="ReplaySlot"/> at most once per
/// (session, slot, sequence number), like NFSv4.1's session slots: a repeat of the last sequence
/// number of a slot gets the reply the first run gave, so a client may send a change again
/// whenever it cannot know whether it ran (a crash of this server, a broken connection).
/// <para>
/// The entry is stored in the same commit as the change it answers, so after a crash both are
/// there or neither is (then the change runs again, as it should). A call that changed nothing
/// stored keeps its entry in memory only: if it is lost, running the call again is harmless.
/// Entries go with their session (closed, expired, or not renewed within a lease of a start).
/// </para>
/// All members are called under <see cref="MetadataState.Sync"/>.
/// </summary>
public sealed class ReplyCache(MetadataState state)
{
    private const int MaxSessionId = 128;
    private readonly MetadataState _s = state;

    /// <summary>
    /// The reply to <paramref name="replay"/> of <paramref name="session"/>: the cached one for a
    /// repeat, else <paramref name="op"/>'s. <paramref name="redoInMemory"/> redoes, for a cached
    /// reply from before this process started, what the call did to memory-only state.
    /// </summary>
    public T Run<T>(string? session, ReplaySlot? replay, Func<T> op, Action<T>? redoInMemory = null)
        where T : class, IMessage<T>, IErrnoReply, new()
    {
        if (replay is null || string.IsNullOrEmpty(session) || session.Length > MaxSessionId)
            return op();
        var key = ReplyRecord.KeyOf(session, replay.Slot);
        var seq = (long)replay.Seq;
        if (_s.Replies.TryGetValue(key, out var last))
        {
            if (last.Seq == seq)
            {
                var cached = ParserOf<T>.Instance.ParseFrom(last.Reply);
                if (!last.RanInThisProcess)
                {
                    redoInMemory?.Invoke(cached);
                    last.RanInThisProcess = true;
                }
                // Stored again, so that the repeat's commit comes after the first run's: the
                // cached reply is never sent before the change it reports is in the journal.
                _s.MarkReply(key);
                return cached;
            }
            if (seq < last.Seq)
                return new T { Errno = E.EIO };   // a late copy of a call its client gave up on
        }
        var reply = op();
        _s.Replies[key] = new ReplyRecord
        {
            Id = key, Session = session, Slot = replay.Slot, Seq = seq, Reply = reply.ToByteArray(),
            TimeMs = _s.NowMs, RanInThisProcess = true,
        };
        if (_s.HasUncommittedChanges)
            _s.MarkReply(key);
        return reply;
    }

    /// <summary>Drops the entries of sessions that <paramref name="gone"/> says are gone.</summary>
    public void Forget(Func<string, bool> gone)
    {
        List<string>? dropped = null;
        foreach (var entry in _s.Replies.Values)
            if (gone(entry.Session))
                (dropped ??= []).Add(entry.Id);
        foreach (var key in dropped ?? [])
        {
            _s.Replies.Remove(key);
            _s.MarkReply(key);
        }
    }

    private static class ParserOf<T> where T : class, IMessage<T>, new()
    {
        public static readonly MessageParser<T> Instance = new(() => new T());
    }
}
