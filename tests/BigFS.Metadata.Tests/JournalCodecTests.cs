using System.Buffers;
using System.Buffers.Binary;
using System.Collections;
using System.Reflection;
using System.Text;
using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using LiteDB;

namespace BigFS.Metadata.Tests;

public sealed class JournalCodecTests
{
    private static readonly BsonMapper Mapper = new() { EnumAsInteger = true };

    public static TheoryData<RecordKind, Type> RecordTypes => new()
    {
        { RecordKind.Inode, typeof(InodeRecord) },
        { RecordKind.Dirent, typeof(DirentRecord) },
        { RecordKind.Layout, typeof(LayoutRegionRecord) },
        { RecordKind.Chunk, typeof(ChunkRecord) },
        { RecordKind.Node, typeof(NodeRecord) },
        { RecordKind.Counters, typeof(CountersRecord) },
        { RecordKind.Reply, typeof(ReplyRecord) },
    };

    private static byte[] EncodeV3(params StoreChange[] changes)
    {
        var buffer = new ArrayBufferWriter<byte>();
        JournalCodec.Encode(changes, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] EncodeV1(params StoreChange[] changes)
    {
        var buffer = new ArrayBufferWriter<byte>();
        JournalV1Encoder.Encode(changes, Mapper, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static List<List<StoreChange>> Decode(byte[] journal) => JournalCodec.Decode(journal, Mapper).ToList();

    private static object KeyOf(RecordKind kind, object record) =>
        kind == RecordKind.Inode ? ((InodeRecord)record).Id : (string)record.GetType().GetProperty("Id")!.GetValue(record)!;

    // ---- every persisted property, found by reflection, survives a round trip ----

    private static IEnumerable<PropertyInfo> PersistedProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true } && p.GetCustomAttribute<BsonIgnoreAttribute>() is null);

    /// <summary>Sets every persisted property to a distinct value that is not the default.</summary>
    private sealed class Filler
    {
        private int _next = 1;

        public object Populate(Type type)
        {
            var instance = Activator.CreateInstance(type)!;
            var fresh = Activator.CreateInstance(type)!;
            foreach (var property in PersistedProperties(type))
            {
                var value = ValueFor(property.PropertyType);
                property.SetValue(instance, value);
                Assert.False(DeepEqual(property.GetValue(fresh), value, out _),
                    $"{type.Name}.{property.Name}: the test value equals the default, so it would prove nothing");
            }
            return instance;
        }

        private object ValueFor(Type type)
        {
            var n = _next++;
            if (type == typeof(long)) return 1_000_000_007L * n;
            if (type == typeof(int)) return 1_000 + n;
            if (type == typeof(bool)) return true;
            if (type == typeof(string)) return $"v{n}-é✓";   // non-ASCII: UTF-8 lengths differ from char counts
            if (type == typeof(byte[])) return new byte[] { (byte)n, 0, 0xFF, (byte)(n * 7) };
            if (type == typeof(long[])) return new[] { n, -n, long.MaxValue, long.MinValue };
            if (type.IsEnum)
            {
                var values = Enum.GetValues(type);
                return values.GetValue(values.Length - 1)!;   // the last defined value; never 0 here
            }
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
            {
                var list = (IList)Activator.CreateInstance(type)!;
                var element = type.GetGenericArguments()[0];
                list.Add(ValueFor(element));
                list.Add(ValueFor(element));
                return list;
            }
            if (type.IsClass && type.Namespace == typeof(InodeRecord).Namespace)
                return Populate(type);
            throw new NotSupportedException($"no test value for a {type}: teach this test (and JournalRecordFormat) about it");
        }
    }

    private static bool DeepEqual(object? expected, object? actual, out string difference, string path = "")
    {
        difference = "";
        if (expected is null || actual is null)
        {
            difference = $"{path}: expected {expected ?? "null"}, got {actual ?? "null"}";
            return expected is null && actual is null;
        }
        if (expected.GetType() != actual.GetType())
        {
            difference = $"{path}: expected a {expected.GetType()}, got a {actual.GetType()}";
            return false;
        }
        if (expected is IList expectedList)
        {
            var actualList = (IList)actual;
            if (expectedList.Count != actualList.Count)
            {
                difference = $"{path}: expected {expectedList.Count} items, got {actualList.Count}";
                return false;
            }
            for (var i = 0; i < expectedList.Count; i++)
                if (!DeepEqual(expectedList[i], actualList[i], out difference, $"{path}[{i}]"))
                    return false;
            return true;
        }
        var type = expected.GetType();
        if (type.IsPrimitive || type.IsEnum || type == typeof(string))
        {
            difference = $"{path}: expected {expected}, got {actual}";
            return expected.Equals(actual);
        }
        foreach (var property in PersistedProperties(type))
            if (!DeepEqual(property.GetValue(expected), property.GetValue(actual), out difference, $"{path}.{property.Name}"))
                return false;
        return true;
    }

    [Theory]
    [MemberData(nameof(RecordTypes))]
    public void Every_persisted_property_of_a_record_survives_a_round_trip(RecordKind kind, Type type)
    {
        var record = new Filler().Populate(type);
        var change = Assert.Single(Assert.Single(Decode(EncodeV3(StoreChange.Put(kind, KeyOf(kind, record), record)))));
        Assert.Equal(kind, change.Kind);
        Assert.Equal(KeyOf(kind, record), change.Key);
        Assert.IsType(type, change.Record);
        Assert.True(DeepEqual(record, change.Record, out var difference), difference);
    }

    [Fact]
    public void The_stored_bytes_of_an_inode_are_not_persisted()
    {
        var change = Decode(EncodeV3(StoreChange.Put(RecordKind.Inode, 3L, new InodeRecord { Id = 3, StoredBytes = 4096 })))[0][0];
        Assert.Equal(0, ((InodeRecord)change.Record!).StoredBytes);
    }

    // ---- every kind, puts and deletes, long and string keys ----

    [Fact]
    public void Puts_and_deletes_of_every_kind_with_long_and_string_keys_round_trip()
    {
        var name = Encoding.UTF8.GetBytes("naïve.txt");
        var changes = new List<StoreChange>
        {
            StoreChange.Put(RecordKind.Inode, 42L, new InodeRecord { Id = 42, Mode = 0x1ED, Nlink = 2, SymlinkTarget = [1, 2, 3] }),
            StoreChange.Put(RecordKind.Dirent, DirentRecord.KeyOf(1, name), new DirentRecord { Id = DirentRecord.KeyOf(1, name), Parent = 1, Name = name, Child = 42, Cookie = 7 }),
            StoreChange.Put(RecordKind.Layout, LayoutRegionRecord.KeyOf(42, 0), new LayoutRegionRecord
            {
                Id = LayoutRegionRecord.KeyOf(42, 0), Ino = 42,
                Extents = [new ExtentRecord { FileOffset = 0, Length = 4096, ChunkId = "c1", ChunkOffset = 0 }, new ExtentRecord { FileOffset = 4096, Length = 10, ChunkId = "c2", ChunkOffset = 5 }],
            }),
            StoreChange.Put(RecordKind.Chunk, "c1", new ChunkRecord
            {
                Id = "c1", Size = 4096, Checksum = unchecked((long)0xFEDCBA9876543210UL), BlockChecksums = [-1, 2], State = ChunkState.Live,
                Copies = [new CopyRecord { NodeId = "n1", Status = CopyState.Available, Primary = true }, new CopyRecord { NodeId = "n2", Status = CopyState.Pending, DesignatedMs = 99 }],
            }),
            StoreChange.Put(RecordKind.Node, "n1", new NodeRecord { Id = "n1", Address = "127.0.0.1:1", DataAddress = "", Labels = ["ssd", "rack-1"] }),
            StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, new CountersRecord { NextInode = 43, NextCookie = 8 }),
            StoreChange.Delete(RecordKind.Inode, 41L),
            StoreChange.Delete(RecordKind.Inode, long.MinValue),
            StoreChange.Delete(RecordKind.Dirent, "1/ABCD"),
            StoreChange.Delete(RecordKind.Layout, "41:0"),
            StoreChange.Delete(RecordKind.Chunk, "c0"),
            StoreChange.Delete(RecordKind.Node, "n0"),
            StoreChange.Delete(RecordKind.Counters, ""),
        };
        var decoded = Assert.Single(Decode(EncodeV3([.. changes])));
        Assert.Equal(changes.Count, decoded.Count);
        for (var i = 0; i < changes.Count; i++)
        {
            Assert.Equal(changes[i].Kind, decoded[i].Kind);
            Assert.Equal(changes[i].Key, decoded[i].Key);
            Assert.True(DeepEqual(changes[i].Record, decoded[i].Record, out var difference), $"change {i}: {difference}");
        }
    }

    [Fact]
    public void Nulls_and_empties_stay_what_they_were()
    {
        var empty = new InodeRecord { Id = 1, SymlinkTarget = [], Xattrs = [] };
        var nulls = new InodeRecord { Id = 2, SymlinkTarget = null, Xattrs = null! };
        var chunk = new ChunkRecord { Id = null!, BlockChecksums = null!, Copies = null! };
        var decoded = Decode(EncodeV3(StoreChange.Put(RecordKind.Inode, 1L, empty), StoreChange.Put(RecordKind.Inode, 2L, nulls), StoreChange.Put(RecordKind.Chunk, "x", chunk)))[0];
        Assert.Empty(Assert.IsType<byte[]>(((InodeRecord)decoded[0].Record!).SymlinkTarget));
        Assert.Empty(((InodeRecord)decoded[0].Record!).Xattrs);
        Assert.Null(((InodeRecord)decoded[1].Record!).SymlinkTarget);
        Assert.Null(((InodeRecord)decoded[1].Record!).Xattrs);
        Assert.True(DeepEqual(chunk, decoded[2].Record, out var difference), difference);
    }

    [Fact]
    public void Encode_writes_the_BFJ3_header_and_appends_after_what_the_buffer_holds()
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write(EncodeV1(StoreChange.Delete(RecordKind.Inode, 1L)));
        var before = buffer.WrittenCount;
        JournalCodec.Encode([StoreChange.Delete(RecordKind.Chunk, "abc")], buffer);
        var record = buffer.WrittenSpan[before..];
        Assert.Equal("BFJ3", Encoding.ASCII.GetString(record[..4]));
        var length = BinaryPrimitives.ReadInt32LittleEndian(record[4..]);
        Assert.Equal(JournalCodec.HeaderSize + length, record.Length);
        Assert.Equal(ChunkChecksum.Compute(record[JournalCodec.HeaderSize..]), BinaryPrimitives.ReadUInt64LittleEndian(record[8..]));
        Assert.Equal(2, Decode(buffer.WrittenSpan.ToArray()).Count);
    }

    /// <summary>A buffer writer that offers exactly the room asked for, never more.</summary>
    private sealed class TightBufferWriter : IBufferWriter<byte>
    {
        public readonly ArrayBufferWriter<byte> Inner = new();
        public readonly List<int> Hints = [];
        public void Advance(int count) => Inner.Advance(count);
        public Memory<byte> GetMemory(int sizeHint = 0) => Inner.GetMemory(sizeHint)[..Math.Max(sizeHint, 1)];
        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Hints.Add(sizeHint);
            return Inner.GetSpan(sizeHint)[..Math.Max(sizeHint, 1)];
        }
    }

    [Fact]
    public void A_group_larger_than_the_first_guess_is_encoded_again_into_exactly_the_room_it_needs()
    {
        var big = new InodeRecord { Id = 9, Xattrs = [new XattrEntry { Name = Encoding.UTF8.GetBytes("user.big"), Value = new byte[100_000] }] };
        big.Xattrs[0].Value.AsSpan().Fill(0xAB);
        var name = new string('ü', 5_000);   // 10,000 UTF-8 bytes
        var output = new TightBufferWriter();
        JournalCodec.Encode([StoreChange.Put(RecordKind.Inode, 9L, big), StoreChange.Delete(RecordKind.Dirent, name)], output);

        Assert.Equal(2, output.Hints.Count);
        Assert.Equal(output.Inner.WrittenCount, output.Hints[1]);
        var decoded = Assert.Single(Decode(output.Inner.WrittenSpan.ToArray()));
        Assert.True(DeepEqual(big, decoded[0].Record, out var difference), difference);
        Assert.Equal(name, decoded[1].Key);
    }

    [Fact]
    public void A_record_of_the_wrong_type_for_its_kind_is_refused()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentException>(() => JournalCodec.Encode([StoreChange.Put(RecordKind.Dirent, 1L, new InodeRecord())], output));
        Assert.Throws<ArgumentException>(() => JournalCodec.Encode([StoreChange.Delete(RecordKind.Inode, 1)], output));   // an int key
        Assert.Equal(0, output.WrittenCount);
    }

    // ---- the previous version's records ----

    [Fact]
    public void A_BFJ1_record_from_the_previous_version_decodes()
    {
        var inode = new InodeRecord { Id = 5, Mode = 0x1ED, Uid = 1000, SymlinkTarget = [7, 8], Xattrs = [new XattrEntry { Name = [1], Value = [2, 3] }] };
        var chunk = new ChunkRecord { Id = "c1", Size = 10, BlockChecksums = [4, 5], State = ChunkState.Live, Copies = [new CopyRecord { NodeId = "n1", Status = CopyState.Available, Primary = true }] };
        var journal = EncodeV1(StoreChange.Put(RecordKind.Inode, 5L, inode), StoreChange.Put(RecordKind.Chunk, "c1", chunk), StoreChange.Delete(RecordKind.Dirent, "1/66"));
        Assert.Equal("BFJ1", Encoding.ASCII.GetString(journal, 0, 4));

        var group = Assert.Single(Decode(journal));
        Assert.Equal((RecordKind.Inode, (object)5L), (group[0].Kind, group[0].Key));
        Assert.True(DeepEqual(inode, group[0].Record, out var difference), difference);
        Assert.True(DeepEqual(chunk, group[1].Record, out difference), difference);
        Assert.Equal((RecordKind.Dirent, (object)"1/66", (object?)null), (group[2].Kind, group[2].Key, group[2].Record));
    }

    [Fact]
    public void A_BFJ2_record_from_the_previous_version_decodes_with_every_inode_named()
    {
        // BFJ2 is BFJ3 without an inode's last field (Unnamed).
        var inode = new InodeRecord { Id = 7, Mode = 0x1A4, Nlink = 1, Xattrs = [new XattrEntry { Name = [1], Value = [2] }] };
        var v3 = PayloadOf(EncodeV3(StoreChange.Put(RecordKind.Inode, 7L, inode), StoreChange.Delete(RecordKind.Chunk, "c")));
        var inodeEnd = v3.Length - (1 + 1 + 4 + 1 + 1);   // the delete after it: kind, key tag, length, "c", present flag
        Assert.Equal(0, v3[inodeEnd - 1]);   // Unnamed = false
        var v2 = v3[..(inodeEnd - 1)].Concat(v3[inodeEnd..]).ToArray();

        var group = Assert.Single(Decode(Frame("BFJ2", v2)));
        Assert.True(DeepEqual(inode, group[0].Record, out var difference), difference);
        Assert.Equal((RecordKind.Chunk, (object)"c", (object?)null), (group[1].Kind, group[1].Key, group[1].Record));
    }

    [Fact]
    public void BFJ1_and_BFJ2_records_in_one_file_decode_in_order()
    {
        var journal = EncodeV1(StoreChange.Put(RecordKind.Inode, 1L, new InodeRecord { Id = 1, Mode = 1 }))
            .Concat(EncodeV3(StoreChange.Put(RecordKind.Inode, 1L, new InodeRecord { Id = 1, Mode = 2 })))
            .Concat(EncodeV1(StoreChange.Delete(RecordKind.Inode, 1L)))
            .Concat(EncodeV3(StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, new CountersRecord { NextInode = 4 })))
            .ToArray();
        var groups = Decode(journal);
        Assert.Equal(4, groups.Count);
        Assert.Equal(1, ((InodeRecord)groups[0][0].Record!).Mode);
        Assert.Equal(2, ((InodeRecord)groups[1][0].Record!).Mode);
        Assert.Null(groups[2][0].Record);
        Assert.Equal(4, ((CountersRecord)groups[3][0].Record!).NextInode);
    }

    [Fact]
    public void A_journal_left_by_the_previous_version_replays_into_the_store()
    {
        var dir = Path.Combine(Path.GetTempPath(), "bigfs-journal-v1-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var journal = EncodeV1(StoreChange.Put(RecordKind.Inode, 2L, new InodeRecord { Id = 2, Mode = 0x1A4 }),
                StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, new CountersRecord { NextInode = 3 }));
            File.WriteAllBytes(Path.Combine(dir, JournaledMetadataStore.SegmentPrefix + "1.log"), [.. journal, .. new byte[4096]]);
            using var recovered = new JournaledMetadataStore(new LiteDbMetadataStore(dir), dir);
            var snapshot = recovered.Load();
            Assert.Equal(0x1A4, Assert.Single(snapshot.Inodes).Mode);
            Assert.Equal(3, snapshot.Counters!.NextInode);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    // ---- torn and corrupt tails end decoding; a checksummed but malformed payload throws ----

    private static byte[] Frame(string magic, byte[] payload)
    {
        var record = new byte[JournalCodec.HeaderSize + payload.Length];
        Encoding.ASCII.GetBytes(magic, record);
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(4), payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(8), ChunkChecksum.Compute(payload));
        payload.CopyTo(record, JournalCodec.HeaderSize);
        return record;
    }

    private static byte[] PayloadOf(byte[] record) => record[JournalCodec.HeaderSize..];

    [Theory]
    [InlineData("torn header")]
    [InlineData("torn payload")]
    [InlineData("checksum mismatch")]
    [InlineData("bad magic")]
    [InlineData("negative length")]
    [InlineData("length past the end")]
    [InlineData("zeros")]
    public void A_torn_or_corrupt_record_ends_decoding_after_the_whole_ones(string damage)
    {
        var first = EncodeV3(StoreChange.Put(RecordKind.Inode, 1L, new InodeRecord { Id = 1 }));
        var second = EncodeV3(StoreChange.Put(RecordKind.Inode, 2L, new InodeRecord { Id = 2 }), StoreChange.Delete(RecordKind.Chunk, "c"));
        switch (damage)
        {
            case "torn header": second = second[..10]; break;
            case "torn payload": second = second[..^3]; break;
            case "checksum mismatch": second[^1] ^= 0x01; break;
            case "bad magic": second[3] = (byte)'9'; break;
            case "negative length": BinaryPrimitives.WriteInt32LittleEndian(second.AsSpan(4), -5); break;
            case "length past the end": BinaryPrimitives.WriteInt32LittleEndian(second.AsSpan(4), second.Length); break;
            case "zeros": second = new byte[second.Length]; break;
        }
        var third = EncodeV3(StoreChange.Delete(RecordKind.Inode, 3L));   // after the damage: never reached
        var group = Assert.Single(Decode([.. first, .. second, .. third]));
        Assert.Equal(1L, group[0].Key);
    }

    [Theory]
    [InlineData("string length past the end")]
    [InlineData("negative string length")]
    [InlineData("payload cut inside a record")]
    [InlineData("bytes left over")]
    [InlineData("unknown record kind")]
    [InlineData("unknown key tag")]
    [InlineData("present flag not 0 or 1")]
    [InlineData("change count too large")]
    [InlineData("xattr count too large")]
    [InlineData("a put of nothing")]
    public void A_checksummed_but_malformed_BFJ3_payload_throws_InvalidDataException(string flaw)
    {
        // [Delete(Chunk, "abc")]: count(4) kind(1) tag(1) length(4) "abc"(3) present(1)
        var delete = PayloadOf(EncodeV3(StoreChange.Delete(RecordKind.Chunk, "abc")));
        Assert.Equal(14, delete.Length);
        var inode = PayloadOf(EncodeV3(StoreChange.Put(RecordKind.Inode, 1L, new InodeRecord { Id = 1 })));
        var payload = flaw switch
        {
            "string length past the end" => With(delete, 6, 1_000),
            "negative string length" => With(delete, 6, -2),
            "payload cut inside a record" => inode[..^6],
            "bytes left over" => [.. delete, 0],
            "unknown record kind" => WithByte(delete, 4, 9),
            "unknown key tag" => WithByte(delete, 5, 7),
            "present flag not 0 or 1" => WithByte(delete, 13, 2),
            "change count too large" => With(delete, 0, int.MaxValue),
            "xattr count too large" => With(inode, inode.Length - 5, 1_000_000),   // before the inode's last field, Unnamed
            "a put of nothing" => WithByte(delete, 13, 1),
            _ => throw new ArgumentOutOfRangeException(nameof(flaw)),
        };
        var journal = EncodeV3(StoreChange.Delete(RecordKind.Inode, 1L)).Concat(Frame("BFJ3", payload)).ToArray();
        var groups = JournalCodec.Decode(journal, Mapper).GetEnumerator();
        Assert.True(groups.MoveNext());   // the record before it is fine
        var error = Assert.Throws<InvalidDataException>(() => groups.MoveNext());
        Assert.Contains("malformed metadata journal record", error.Message);
    }

    private static byte[] With(byte[] payload, int at, int value)
    {
        var copy = payload.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static byte[] WithByte(byte[] payload, int at, byte value)
    {
        var copy = payload.ToArray();
        copy[at] = value;
        return copy;
    }
}
