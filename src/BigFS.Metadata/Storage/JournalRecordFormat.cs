using BigFS.Metadata.Model;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The fields of each record type in the journal's binary format (BFJ2, BFJ3), written and read in
/// declaration order; each type's writer and reader sit side by side so they stay in step.
/// Strings and byte strings are length-prefixed (-1 = null), lists count-prefixed (-1 = null).
/// A field added to a record class must be added here too (JournalCodecTests round-trips every
/// property and fails otherwise) — and since the format then changes, under a new magic, with
/// the previous one still decoded: a journal left by the previous version must still replay.
/// Version 3 (BFJ3) added <see cref="InodeRecord.Unnamed"/> at the end of an inode.
/// </summary>
internal static class JournalRecordFormat
{
    public static void Write(ref JournalWriter w, RecordKind kind, object record)
    {
        switch (kind)
        {
            case RecordKind.Inode when record is InodeRecord inode:
                WriteInode(ref w, inode);
                break;
            case RecordKind.Dirent when record is DirentRecord dirent:
                WriteDirent(ref w, dirent);
                break;
            case RecordKind.Layout when record is LayoutRegionRecord layout:
                WriteLayout(ref w, layout);
                break;
            case RecordKind.Chunk when record is ChunkRecord chunk:
                WriteChunk(ref w, chunk);
                break;
            case RecordKind.Node when record is NodeRecord node:
                WriteNode(ref w, node);
                break;
            case RecordKind.Counters when record is CountersRecord counters:
                WriteCounters(ref w, counters);
                break;
            case RecordKind.Reply when record is ReplyRecord reply:
                WriteReply(ref w, reply);
                break;
            default:
                throw new ArgumentException($"a {kind} change cannot hold a {record.GetType().Name}");
        }
    }

    public static object Read(ref JournalReader r, RecordKind kind, int version) => kind switch
    {
        RecordKind.Inode => ReadInode(ref r, version),
        RecordKind.Dirent => ReadDirent(ref r),
        RecordKind.Layout => ReadLayout(ref r),
        RecordKind.Chunk => ReadChunk(ref r),
        RecordKind.Node => ReadNode(ref r),
        RecordKind.Counters => ReadCounters(ref r),
        RecordKind.Reply => ReadReply(ref r),
        _ => throw r.Malformed($"record kind {(int)kind}"),
    };

    private static void WriteInode(ref JournalWriter w, InodeRecord x)
    {
        w.Int64(x.Id);
        w.Int32(x.Type);
        w.Int32(x.Mode);
        w.Int64(x.Uid);
        w.Int64(x.Gid);
        w.Int32(x.Nlink);
        w.Int64(x.Size);
        w.Int64(x.Rdev);
        w.Int64(x.AtimeNs);
        w.Int64(x.MtimeNs);
        w.Int64(x.CtimeNs);
        w.Int64(x.Version);
        w.Int32(x.Goal);
        w.Int64(x.Parent);
        w.Bytes(x.SymlinkTarget);
        // StoredBytes is derived from the layout and never persisted.
        w.List(x.Xattrs, static (ref JournalWriter w, XattrEntry xattr) =>
        {
            w.Bytes(xattr.Name);
            w.Bytes(xattr.Value);
        });
        w.Bool(x.Unnamed);
    }

    // Object initializers evaluate in source order: the fields are read in the order written.
    private static InodeRecord ReadInode(ref JournalReader r, int version) => new()
    {
        Id = r.Int64(),
        Type = r.Int32(),
        Mode = r.Int32(),
        Uid = r.Int64(),
        Gid = r.Int64(),
        Nlink = r.Int32(),
        Size = r.Int64(),
        Rdev = r.Int64(),
        AtimeNs = r.Int64(),
        MtimeNs = r.Int64(),
        CtimeNs = r.Int64(),
        Version = r.Int64(),
        Goal = r.Int32(),
        Parent = r.Int64(),
        SymlinkTarget = r.Bytes(),
        Xattrs = r.List(2 * sizeof(int), "xattr list", static (ref JournalReader r) => new XattrEntry { Name = r.Bytes()!, Value = r.Bytes()! })!,
        Unnamed = version >= 3 && r.Bool(),
    };

    private static void WriteDirent(ref JournalWriter w, DirentRecord x)
    {
        w.String(x.Id);
        w.Int64(x.Parent);
        w.Bytes(x.Name);
        w.Int64(x.Child);
        w.Int64(x.Cookie);
    }

    private static DirentRecord ReadDirent(ref JournalReader r) => new()
    {
        Id = r.String()!,
        Parent = r.Int64(),
        Name = r.Bytes()!,
        Child = r.Int64(),
        Cookie = r.Int64(),
    };

    private static void WriteCounters(ref JournalWriter w, CountersRecord x)
    {
        w.String(x.Id);
        w.Int64(x.NextInode);
        w.Int64(x.NextCookie);
    }

    private static CountersRecord ReadCounters(ref JournalReader r) => new()
    {
        Id = r.String()!,
        NextInode = r.Int64(),
        NextCookie = r.Int64(),
    };

    private static void WriteReply(ref JournalWriter w, ReplyRecord x)
    {
        w.String(x.Id);
        w.String(x.Session);
        w.Int64(x.Slot);
        w.Int64(x.Seq);
        w.Bytes(x.Reply);
        w.Int64(x.TimeMs);
    }

    private static ReplyRecord ReadReply(ref JournalReader r) => new()
    {
        Id = r.String()!,
        Session = r.String()!,
        Slot = r.Int64(),
        Seq = r.Int64(),
        Reply = r.Bytes()!,
        TimeMs = r.Int64(),
    };

    private static void WriteLayout(ref JournalWriter w, LayoutRegionRecord x)
    {
        w.String(x.Id);
        w.Int64(x.Ino);
        w.Int64(x.Region);
        w.List(x.Extents, static (ref JournalWriter w, ExtentRecord e) =>
        {
            w.Int64(e.FileOffset);
            w.Int64(e.Length);
            w.String(e.ChunkId);
            w.Int64(e.ChunkOffset);
        });
    }

    private static LayoutRegionRecord ReadLayout(ref JournalReader r) => new()
    {
        Id = r.String()!,
        Ino = r.Int64(),
        Region = r.Int64(),
        Extents = r.List(3 * sizeof(long) + sizeof(int), "extent list", static (ref JournalReader r) =>
            new ExtentRecord { FileOffset = r.Int64(), Length = r.Int64(), ChunkId = r.String()!, ChunkOffset = r.Int64() })!,
    };

    private static void WriteChunk(ref JournalWriter w, ChunkRecord x)
    {
        w.String(x.Id);
        w.Int64(x.Size);
        w.Int64(x.Checksum);
        w.Int64Array(x.BlockChecksums);
        w.Int64(x.OwnerIno);
        w.Int64(x.CreatedMs);
        w.Int32((int)x.State);
        w.Int32(x.Goal);
        w.Int32(x.ReplacementCount);
        w.Int64(x.ReplacementsExhaustedMs);
        w.List(x.Copies, static (ref JournalWriter w, CopyRecord c) =>
        {
            w.String(c.NodeId);
            w.Int32((int)c.Status);
            w.Bool(c.Primary);
            w.Int64(c.DesignatedMs);
        });
    }

    private static ChunkRecord ReadChunk(ref JournalReader r) => new()
    {
        Id = r.String()!,
        Size = r.Int64(),
        Checksum = r.Int64(),
        BlockChecksums = r.Int64Array()!,
        OwnerIno = r.Int64(),
        CreatedMs = r.Int64(),
        State = (ChunkState)r.Int32(),
        Goal = r.Int32(),
        ReplacementCount = r.Int32(),
        ReplacementsExhaustedMs = r.Int64(),
        Copies = r.List(2 * sizeof(int) + 1 + sizeof(long), "copy list", static (ref JournalReader r) =>
            new CopyRecord { NodeId = r.String()!, Status = (CopyState)r.Int32(), Primary = r.Bool(), DesignatedMs = r.Int64() })!,
    };

    private static void WriteNode(ref JournalWriter w, NodeRecord x)
    {
        w.String(x.Id);
        w.String(x.Address);
        w.String(x.DataAddress);
        w.Int64(x.CapacityBytes);
        w.Int64(x.UsedBytes);
        w.Int64(x.ChunkCount);
        w.Int64(x.LastHeartbeatMs);
        w.List(x.Labels, static (ref JournalWriter w, string label) => w.String(label));
    }

    private static NodeRecord ReadNode(ref JournalReader r) => new()
    {
        Id = r.String()!,
        Address = r.String()!,
        DataAddress = r.String()!,
        CapacityBytes = r.Int64(),
        UsedBytes = r.Int64(),
        ChunkCount = r.Int64(),
        LastHeartbeatMs = r.Int64(),
        Labels = r.List(sizeof(int), "label list", static (ref JournalReader r) => r.String()!)!,
    };
}
