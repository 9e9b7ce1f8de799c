using BigFS.Metadata.Model;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The fields of each record type in the journal's binary format (BFJ2), written and read in
/// declaration order; each type's writer and reader sit side by side so they stay in step.
/// Strings and byte strings are length-prefixed (-1 = null), lists count-prefixed (-1 = null).
/// A field added to a record class must be added here too (JournalCodecTests round-trips every
/// property and fails otherwise) — and since the format then changes, under a new magic, with
/// the previous one still decoded: a journal left by the previous version must still replay.
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
            default:
                throw new ArgumentException($"a {kind} change cannot hold a {record.GetType().Name}");
        }
    }

    public static object Read(ref JournalReader r, RecordKind kind) => kind switch
    {
        RecordKind.Inode => ReadInode(ref r),
        RecordKind.Dirent => ReadDirent(ref r),
        RecordKind.Layout => ReadLayout(ref r),
        RecordKind.Chunk => ReadChunk(ref r),
        RecordKind.Node => ReadNode(ref r),
        RecordKind.Counters => ReadCounters(ref r),
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
        if (x.Xattrs is null)
        {
            w.Count(-1);
            return;
        }
        w.Count(x.Xattrs.Count);
        foreach (var xattr in x.Xattrs)
        {
            w.Bytes(xattr.Name);
            w.Bytes(xattr.Value);
        }
    }

    private static InodeRecord ReadInode(ref JournalReader r)
    {
        // Object initializers evaluate in source order: the fields are read in the order written.
        var inode = new InodeRecord
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
        };
        var count = r.Count(2 * sizeof(int), "xattr list");
        if (count < 0)
        {
            inode.Xattrs = null!;
            return inode;
        }
        var xattrs = new List<XattrEntry>(count);
        for (var i = 0; i < count; i++)
            xattrs.Add(new XattrEntry { Name = r.Bytes()!, Value = r.Bytes()! });
        inode.Xattrs = xattrs;
        return inode;
    }

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

    private static void WriteLayout(ref JournalWriter w, LayoutRegionRecord x)
    {
        w.String(x.Id);
        w.Int64(x.Ino);
        w.Int64(x.Region);
        if (x.Extents is null)
        {
            w.Count(-1);
            return;
        }
        w.Count(x.Extents.Count);
        foreach (var e in x.Extents)
        {
            w.Int64(e.FileOffset);
            w.Int64(e.Length);
            w.String(e.ChunkId);
            w.Int64(e.ChunkOffset);
        }
    }

    private static LayoutRegionRecord ReadLayout(ref JournalReader r)
    {
        var layout = new LayoutRegionRecord { Id = r.String()!, Ino = r.Int64(), Region = r.Int64() };
        var count = r.Count(3 * sizeof(long) + sizeof(int), "extent list");
        if (count < 0)
        {
            layout.Extents = null!;
            return layout;
        }
        var extents = new List<ExtentRecord>(count);
        for (var i = 0; i < count; i++)
            extents.Add(new ExtentRecord { FileOffset = r.Int64(), Length = r.Int64(), ChunkId = r.String()!, ChunkOffset = r.Int64() });
        layout.Extents = extents;
        return layout;
    }

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
        if (x.Copies is null)
        {
            w.Count(-1);
            return;
        }
        w.Count(x.Copies.Count);
        foreach (var c in x.Copies)
        {
            w.String(c.NodeId);
            w.Int32((int)c.Status);
            w.Bool(c.Primary);
            w.Int64(c.DesignatedMs);
        }
    }

    private static ChunkRecord ReadChunk(ref JournalReader r)
    {
        var chunk = new ChunkRecord
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
        };
        var count = r.Count(2 * sizeof(int) + 1 + sizeof(long), "copy list");
        if (count < 0)
        {
            chunk.Copies = null!;
            return chunk;
        }
        var copies = new List<CopyRecord>(count);
        for (var i = 0; i < count; i++)
            copies.Add(new CopyRecord { NodeId = r.String()!, Status = (CopyState)r.Int32(), Primary = r.Bool(), DesignatedMs = r.Int64() });
        chunk.Copies = copies;
        return chunk;
    }

    private static void WriteNode(ref JournalWriter w, NodeRecord x)
    {
        w.String(x.Id);
        w.String(x.Address);
        w.String(x.DataAddress);
        w.Int64(x.CapacityBytes);
        w.Int64(x.UsedBytes);
        w.Int64(x.ChunkCount);
        w.Int64(x.LastHeartbeatMs);
        if (x.Labels is null)
        {
            w.Count(-1);
            return;
        }
        w.Count(x.Labels.Count);
        foreach (var label in x.Labels)
            w.String(label);
    }

    private static NodeRecord ReadNode(ref JournalReader r)
    {
        var node = new NodeRecord
        {
            Id = r.String()!,
            Address = r.String()!,
            DataAddress = r.String()!,
            CapacityBytes = r.Int64(),
            UsedBytes = r.Int64(),
            ChunkCount = r.Int64(),
            LastHeartbeatMs = r.Int64(),
        };
        var count = r.Count(sizeof(int), "label list");
        if (count < 0)
        {
            node.Labels = null!;
            return node;
        }
        var labels = new List<string>(count);
        for (var i = 0; i < count; i++)
            labels.Add(r.String()!);
        node.Labels = labels;
        return node;
    }
}
