using System.Buffers;
using System.Buffers.Binary;
using BigFS.Core;
using BigFS.Metadata.Storage;
using LiteDB;

namespace BigFS.Metadata.Tests;

/// <summary>
/// The journal encoder of the previous version ("BFJ1": one BSON document per group), kept to
/// produce the records a journal left by that version holds — they must still replay.
/// </summary>
internal static class JournalV1Encoder
{
    private const uint Magic = 0x314A4642;   // "BFJ1"

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
        var header = output.GetSpan(JournalCodec.HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], ChunkChecksum.Compute(payload));
        output.Advance(JournalCodec.HeaderSize);
        output.Write(payload);
    }
}
