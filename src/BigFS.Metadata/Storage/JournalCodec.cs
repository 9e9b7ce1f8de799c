using System.Buffers;
using System.Buffers.Binary;
using BigFS.Core;
using BigFS.Metadata.Model;
using LiteDB;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The metadata journal's record format: magic (u32), payload length (i32), XxHash3 of the
/// payload (u64), then the payload — one group of changes (every change a whole record or a
/// delete, so replaying a record twice is harmless). Reading stops at the first record that is
/// torn or corrupt: the tail a crash may leave.
/// <para>
/// <c>"BFJ3"</c>, written now, has a hand-written little-endian payload: the change count, then
/// per change its kind (byte), key (tag 0 + i64, or tag 1 + UTF-8 string), a present flag and
/// the record's fields (<see cref="JournalRecordFormat"/>). Encoding it costs a fraction of the
/// BSON mapping it replaced, on the path of every namespace change. Earlier versions are still
/// read, since a journal left by a previous version must replay: <c>"BFJ2"</c>, the same
/// layout with one inode field fewer, and <c>"BFJ1"</c>, one BSON document per group.
/// </para>
/// </summary>
public static class JournalCodec
{
    public const int HeaderSize = 16;
    private const uint MagicV1 = 0x314A4642;   // "BFJ1"
    private const uint MagicV2 = 0x324A4642;   // "BFJ2"
    private const uint MagicV3 = 0x334A4642;   // "BFJ3"
    /// <summary>A group larger than this is a bug, not a record (a group holds at most ~20,000 changes).</summary>
    private const int MaxPayload = 256 << 20;
    /// <summary>The first guess at a change's encoded size; a larger group is encoded a second time into exactly the room it needs.</summary>
    private const int ExpectedChangeSize = 256;
    private const byte LongKey = 0;
    private const byte StringKey = 1;

    private static readonly Dictionary<RecordKind, Type> RecordTypesV1 = new()
    {
        [RecordKind.Inode] = typeof(InodeRecord),
        [RecordKind.Dirent] = typeof(DirentRecord),
        [RecordKind.Layout] = typeof(LayoutRegionRecord),
        [RecordKind.Chunk] = typeof(ChunkRecord),
        [RecordKind.Node] = typeof(NodeRecord),
        [RecordKind.Counters] = typeof(CountersRecord),
    };

    /// <summary>Appends one framed BFJ3 record for <paramref name="changes"/> to <paramref name="output"/>.</summary>
    public static void Encode(IReadOnlyList<StoreChange> changes, IBufferWriter<byte> output)
    {
        var size = HeaderSize + sizeof(int) + ExpectedChangeSize * changes.Count;
        for (var attempt = 0; ; attempt++)
        {
            var span = output.GetSpan(size);
            var writer = new JournalWriter(span[HeaderSize..]);
            WriteGroup(ref writer, changes);
            var length = writer.Position;
            if (length > MaxPayload)
                throw new ArgumentException($"a group of {changes.Count} changes encodes to {length} bytes, over the {MaxPayload}-byte limit");
            if (!writer.Overflowed)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(span, MagicV3);
                BinaryPrimitives.WriteInt32LittleEndian(span[4..], length);
                BinaryPrimitives.WriteUInt64LittleEndian(span[8..], ChunkChecksum.Compute(span.Slice(HeaderSize, length)));
                output.Advance(HeaderSize + length);
                return;
            }
            // The writer counted what it needed: the second attempt has exactly that room, unless a record changed meanwhile.
            if (attempt > 0)
                throw new InvalidOperationException("a journaled record changed while it was being encoded");
            size = HeaderSize + length;
        }
    }

    private static void WriteGroup(ref JournalWriter w, IReadOnlyList<StoreChange> changes)
    {
        w.Count(changes.Count);
        for (var i = 0; i < changes.Count; i++)
        {
            var change = changes[i];
            w.Byte((byte)change.Kind);
            switch (change.Key)
            {
                case long l:
                    w.Byte(LongKey);
                    w.Int64(l);
                    break;
                case string s:
                    w.Byte(StringKey);
                    w.String(s);
                    break;
                default:
                    throw new ArgumentException($"unsupported key type {change.Key?.GetType().Name ?? "null"}");
            }
            w.Bool(change.Record is not null);
            if (change.Record is not null)
                JournalRecordFormat.Write(ref w, change.Kind, change.Record);
        }
    }

    /// <summary>
    /// The groups of changes in a journal file's bytes, in order, up to the first torn or corrupt
    /// record. A record whose checksum matches but whose payload does not parse throws
    /// <see cref="InvalidDataException"/>: that is not a crash's tail but a bug or a foreign file.
    /// </summary>
    public static IEnumerable<List<StoreChange>> Decode(ReadOnlyMemory<byte> journal, BsonMapper mapper)
    {
        var at = 0;
        while (journal.Length - at >= HeaderSize)
        {
            var header = journal.Span.Slice(at, HeaderSize);
            var magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
            var length = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
            var version = magic switch { MagicV1 => 1, MagicV2 => 2, MagicV3 => 3, _ => 0 };
            if (version == 0 || length <= 0 || length > MaxPayload || length > journal.Length - at - HeaderSize)
                yield break;
            var payload = journal.Slice(at + HeaderSize, length);
            if (ChunkChecksum.Compute(payload.Span) != BinaryPrimitives.ReadUInt64LittleEndian(header[8..]))
                yield break;
            yield return version == 1 ? DecodeGroupV1(payload.ToArray(), mapper) : DecodeGroup(payload.Span, version);
            at += HeaderSize + length;
        }
    }

    /// <summary>A BFJ2 or BFJ3 group: one layout, the version saying which fields a record has.</summary>
    private static List<StoreChange> DecodeGroup(ReadOnlySpan<byte> payload, int version)
    {
        var r = new JournalReader(payload);
        // A change takes at least 3 bytes (kind, key tag, present flag) plus its key.
        var count = r.Count(3 + sizeof(int), "change list");
        if (count < 0)
            throw r.Malformed("null change list");
        var changes = new List<StoreChange>(count);
        for (var i = 0; i < count; i++)
        {
            var kindByte = r.Byte();
            if (kindByte > (byte)RecordKind.Reply)
                throw r.Malformed($"record kind {kindByte}");
            var kind = (RecordKind)kindByte;
            object key = r.Byte() switch
            {
                LongKey => r.Int64(),
                StringKey => r.String() ?? throw r.Malformed("null string key"),
                var tag => throw r.Malformed($"key tag {tag}"),
            };
            changes.Add(r.Bool()
                ? StoreChange.Put(kind, key, JournalRecordFormat.Read(ref r, kind, version))
                : StoreChange.Delete(kind, key));
        }
        r.EnsureEnd();
        return changes;
    }

    private static List<StoreChange> DecodeGroupV1(byte[] payload, BsonMapper mapper)
    {
        var changes = new List<StoreChange>();
        foreach (var item in BsonSerializer.Deserialize(payload)["c"].AsArray)
        {
            var doc = item.AsDocument;
            var kind = (RecordKind)doc["k"].AsInt32;
            object key = doc["i"].IsInt64 ? doc["i"].AsInt64 : doc["i"].IsInt32 ? (long)doc["i"].AsInt32 : doc["i"].AsString;
            changes.Add(doc["r"].IsNull
                ? StoreChange.Delete(kind, key)
                : StoreChange.Put(kind, key, mapper.ToObject(RecordTypesV1[kind], doc["r"].AsDocument)));
        }
        return changes;
    }
}
