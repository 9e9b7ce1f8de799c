using System.Runtime.InteropServices;
using BigFS.Fuse.Protocol;

namespace BigFS.Fuse.Session;

/// <summary>
/// One request read from the kernel, owning its (pooled, pinned) buffer until the reply is sent.
/// Every reply goes through <see cref="Send"/>, which lets exactly one reply out per request.
/// </summary>
internal sealed class FuseRequest
{
    /// <summary>Offset in the buffer where READ/READDIR payloads are built (page-aligned, past the request).</summary>
    public const int PayloadOffset = 4096;

    private readonly FuseChannel _channel;
    private CancellationTokenSource _cts = new();
    private int _replied;

    public FuseRequest(FuseChannel channel, int bufferSize)
    {
        _channel = channel;
        Buffer = GC.AllocateUninitializedArray<byte>(bufferSize, pinned: true);
    }

    public byte[] Buffer { get; }
    public int Length { get; private set; }
    public FuseInHeader Header;
    public FuseOpcode Opcode => (FuseOpcode)Header.Opcode;
    public ulong Unique => Header.Unique;
    public bool Replied => Volatile.Read(ref _replied) != 0;
    public CancellationToken CancellationToken => _cts.Token;

    /// <summary>Body after the in header (and any extension area).</summary>
    public ReadOnlySpan<byte> Body
    {
        get
        {
            int start = Marshal.SizeOf<FuseInHeader>();
            return Buffer.AsSpan(start, Length - start - Header.TotalExtLen * 8);
        }
    }

    public int BodyOffset => Marshal.SizeOf<FuseInHeader>();
    public FuseRequestReader Reader() => new(Body);

    public FuseRequestContext Context() => new(Header.Uid, Header.Gid, Header.Pid, Header.Unique, _cts.Token);

    /// <summary>The context of a request that creates a node, with the caller's umask when the filesystem applies it.</summary>
    public FuseRequestContext Context(uint umask) => new(Header.Uid, Header.Gid, Header.Pid, Header.Unique, _cts.Token, umask);

    /// <summary>Prepares for a freshly read request of <paramref name="length"/> bytes.</summary>
    public bool Begin(int length)
    {
        if (length < Marshal.SizeOf<FuseInHeader>()) return false;
        Header = MemoryMarshal.Read<FuseInHeader>(Buffer);
        if (Header.Len != (uint)length || Header.TotalExtLen * 8 > length - Marshal.SizeOf<FuseInHeader>()) return false;
        Length = length;
        _replied = 0;
        return true;
    }

    /// <summary>Readies the object for reuse; false when it cannot be reused.</summary>
    public void Reset()
    {
        if (!_cts.TryReset())
        {
            _cts.Dispose();
            _cts = new CancellationTokenSource();
        }
    }

    public void Cancel()
    {
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>Whether this pooled object still carries request <paramref name="unique"/>, unanswered.</summary>
    public bool IsPending(ulong unique) => Volatile.Read(ref _replied) == 0 && Header.Unique == unique;

    /// <summary>Sends the one reply of this request. Throws if a reply was already sent.</summary>
    public int Send(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        if (Interlocked.Exchange(ref _replied, 1) != 0)
            throw new InvalidOperationException($"request {Unique} ({Opcode}) was already answered");
        return _channel.Send(header, payload);
    }

    public int ReplyError(int errno)
    {
        Span<byte> header = stackalloc byte[FuseReplyEncoder.OutHeaderSize];
        FuseReplyEncoder.WriteHeader(header, Unique, errno, 0);
        return Send(header, default);
    }

    public int ReplyOk() => ReplyError(0);

    public int ReplyStruct<T>(in T payload) where T : unmanaged
    {
        Span<byte> message = stackalloc byte[FuseReplyEncoder.OutHeaderSize + System.Runtime.CompilerServices.Unsafe.SizeOf<T>()];
        int n = FuseReplyEncoder.EncodeStruct(message, Unique, payload);
        return Send(message[..n], default);
    }

    /// <summary>Most buffers one gathered reply is written from; more are copied into the request buffer.</summary>
    public const int MaxGatherSegments = 64;

    /// <summary>A data reply from several buffers (at most <paramref name="maxLength"/> bytes of them), with one writev.</summary>
    public int ReplyGather(IReadOnlyList<ReadOnlyMemory<byte>> segments, int maxLength)
    {
        int total = 0, count = 0;
        for (; count < segments.Count && total < maxLength; count++)
            total += Math.Min(segments[count].Length, maxLength - total);
        Span<byte> header = stackalloc byte[FuseReplyEncoder.OutHeaderSize];
        FuseReplyEncoder.WriteHeader(header, Unique, 0, total);
        if (count > MaxGatherSegments && total <= Buffer.Length - PayloadOffset)
        {
            var payload = Buffer.AsSpan(PayloadOffset, total);
            for (int i = 0, at = 0; i < count; i++)
            {
                var part = segments[i].Span[..Math.Min(segments[i].Length, total - at)];
                part.CopyTo(payload[at..]);
                at += part.Length;
            }
            return Send(header, payload);
        }
        if (Interlocked.Exchange(ref _replied, 1) != 0)
            throw new InvalidOperationException($"request {Unique} ({Opcode}) was already answered");
        return _channel.SendGather(header, segments, count, total);
    }

    public int ReplyData(ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[FuseReplyEncoder.OutHeaderSize];
        FuseReplyEncoder.WriteHeader(header, Unique, 0, data.Length);
        return Send(header, data);
    }
}
