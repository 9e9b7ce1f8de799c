using System.Threading.Channels;
using BigFS.Metadata.Model;
using BigFS.Protocol;
using Google.Protobuf;

namespace BigFS.Metadata.Logic;

/// <summary>
/// Fans out which directories, names and inodes changed to every watching session but the one that
/// made the change. Publishing never blocks (it runs under the metadata lock): a watcher that
/// falls behind by more than <see cref="Backlog"/> notices is sent a reset instead.
/// </summary>
public sealed class ChangeFeed
{
    public const int Backlog = 4096;

    private readonly Lock _sync = new();
    private ChangeWatcher[] _watchers = [];
    private bool _closed;

    public bool HasWatchers => Volatile.Read(ref _watchers).Length > 0;

    public ChangeWatcher Watch(string sessionId)
    {
        var watcher = new ChangeWatcher(this, sessionId);
        lock (_sync)
        {
            if (_closed)
                watcher.End();
            else
                _watchers = [.. _watchers, watcher];
        }
        return watcher;
    }

    /// <summary>The server is stopping: every watch ends (its stream closes and the mount reconnects later), so shutdown never waits for them.</summary>
    public void Close()
    {
        ChangeWatcher[] ended;
        lock (_sync)
        {
            _closed = true;
            ended = _watchers;
            _watchers = [];
        }
        foreach (var watcher in ended)
            watcher.End();
    }

    internal void Remove(ChangeWatcher watcher)
    {
        lock (_sync)
            _watchers = _watchers.Where(w => w != watcher).ToArray();
    }

    /// <param name="names">Which names of <paramref name="directories"/> changed (possibly not all).</param>
    public void Publish(IReadOnlyCollection<long> directories, IReadOnlyCollection<long> inodes, IReadOnlyCollection<DirentRecord> names, string? origin)
    {
        if (directories.Count == 0 && inodes.Count == 0)
            return;
        ChangeNotice? notice = null;
        foreach (var watcher in Volatile.Read(ref _watchers))
        {
            if (watcher.SessionId == origin)
                continue;
            if (notice is null)
            {
                notice = new ChangeNotice();
                foreach (var d in directories) notice.Directories.Add((ulong)d);
                foreach (var i in inodes) notice.Inodes.Add((ulong)i);
                foreach (var n in names) notice.Names.Add(new ChangedName { Parent = (ulong)n.Parent, Name = ByteString.CopyFrom(n.Name) });
            }
            watcher.Offer(notice);
        }
    }
}

/// <summary>One session's stream of change notices.</summary>
public sealed class ChangeWatcher : IDisposable
{
    private static readonly ChangeNotice ResetNotice = new() { Reset = true };

    private readonly ChangeFeed _feed;
    private readonly Channel<ChangeNotice> _notices = Channel.CreateBounded<ChangeNotice>(
        new BoundedChannelOptions(ChangeFeed.Backlog) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private int _overflowed;

    internal ChangeWatcher(ChangeFeed feed, string sessionId)
    {
        _feed = feed;
        SessionId = sessionId;
    }

    public string SessionId { get; }

    internal void Offer(ChangeNotice notice)
    {
        if (!_notices.Writer.TryWrite(notice))
            Volatile.Write(ref _overflowed, 1);
    }

    internal void End() => _notices.Writer.TryComplete();

    /// <summary>The next notice; a reset once notices were dropped (then the backlog starts over); null once the feed is closed.</summary>
    public async ValueTask<ChangeNotice?> NextAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _overflowed, 0) == 1)
        {
            while (_notices.Reader.TryRead(out _)) { }
            return ResetNotice;
        }
        if (!await _notices.Reader.WaitToReadAsync(ct).ConfigureAwait(false) || !_notices.Reader.TryRead(out var notice))
            return null;
        // Dropped while we waited: what we hold may predate the gap; the reset covers it.
        return Interlocked.Exchange(ref _overflowed, 0) == 1 ? ResetNotice : notice;
    }

    public void Dispose() => _feed.Remove(this);
}
