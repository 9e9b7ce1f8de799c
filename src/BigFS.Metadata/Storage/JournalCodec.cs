using System.Buffers;
using System.Buffers.Binary;
using BigFS.Core;
using BigFS.Metadata.Model;
using LiteDB;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The metadata journal's record format: <c>"BFJ1"</c>, payload length (u32), XxHash3 of the
/// payload (u64), then the payload — one BSON document holding a group of changes (every change
/// a whole record or a delete, so replaying a record twice is harmless). Reading stops at the
/// first record that is torn or corrupt: the tail a crash may leave.
/// </summary>
public static class JournalCodec
{
    public const int HeaderSize = 16;
    private const uint Magic = 0x314A4642;   // "BFJ1"
    /// <summary>A group larger than this is a bug, not a record (a group holds at most ~20,000 changes).</summary>
    private const int MaxPayload = 256 << 20;

    private static readonly Dictionary<RecordKind, Type> RecordTypes = new()
    {
        [RecordKind.Inode] = typeof(InodeRecord),
        [RecordKind.Dirent] = typeof(DirentRecord),
        [RecordKind.Layout] = typeof(LayoutRegionRecord),
        [RecordKind.Chunk] = typeof(ChunkRecord),
        [RecordKind.Node] = typeof(NodeRecord),
        [RecordKind.Counters] = typeof(CountersRecord),
    };

    /// <summary>Appends one framed record for <paramref name="changes"/> to <paramref name="output"/>.</summary>
    public static void Encode(IReadOnlyList<StoreChange> changes, BsonMapper mapper, IBufferWriter<byte> output)
    {
        var list = new BsonArray();
        foreach (var c in changes)
        {
            var key = c.Key switch
            {
                long l => new BsonValue(l),
                string s => new BsonValue(s),
                _ => throw new ArgumentException($"unsupported key type {c.Key.GetType()}"),
            };
            list.Add(new BsonDocument
            {
                ["k"] = (int)c.Kind,
                ["i"] = key,
                ["r"] = c.Record is null ? BsonValue.Null : mapper.ToDocument(c.Record.GetType(), c.Record),
            });
        }
        var payload = BsonSerializer.Serialize(new BsonDocument { ["c"] = list });
        var header = output.GetSpan(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], ChunkChecksum.Compute(payload));
        output.Advance(HeaderSize);
        output.Write(payload);
    }

    /// <summary>The groups of changes in a journal file's bytes, in order, up to the first torn or corrupt record.</summary>
    public static IEnumerable<List<StoreChange>> Decode(ReadOnlyMemory<byte> journal, BsonMapper mapper)
    {
        var at = 0;
        while (journal.Length - at >= HeaderSize)
        {
            var header = journal.Span.Slice(at, HeaderSize);
            var length = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic || length <= 0 || length > MaxPayload
                || length > journal.Length - at - HeaderSize)
                yield break;
            var payload = journal.Slice(at + HeaderSize, length);
            if (ChunkChecksum.Compute(payload.Span) != BinaryPrimitives.ReadUInt64LittleEndian(header[8..]))
                yield break;
            yield return DecodeGroup(payload.ToArray(), mapper);
            at += HeaderSize + length;
        }
    }

    private static List<StoreChange> DecodeGroup(byte[] payload, BsonMapper mapper)
    {
        var changes = new List<StoreChange>();
        foreach (var item in BsonSerializer.Deserialize(payload)["c"].AsArray)
        {
            var doc = item.AsDocument;
            var kind = (RecordKind)doc["k"].AsInt32;
            object key = doc["i"].IsInt64 ? doc["i"].AsInt64 : doc["i"].IsInt32 ? (long)doc["i"].AsInt32 : doc["i"].AsString;
            changes.Add(doc["r"].IsNull
                ? StoreChange.Delete(kind, key)
                : StoreChange.Put(kind, key, mapper.ToObject(RecordTypes[kind], doc["r"].AsDocument)));
        }
        return changes;
    }
}
