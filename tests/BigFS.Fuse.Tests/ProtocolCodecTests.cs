using System.Runtime.InteropServices;
using System.Text;
using BigFS.Fuse.Protocol;

namespace BigFS.Fuse.Tests;

/// <summary>Request decoding, reply encoding, dirent packing and INIT negotiation over plain byte spans.</summary>
public class ProtocolCodecTests
{
    private static byte[] Request<T>(FuseOpcode op, ulong unique, ulong nodeId, T body, params string[] names) where T : unmanaged
    {
        var bytes = new List<byte>();
        bytes.AddRange(new byte[40]);
        bytes.AddRange(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in body)).ToArray());
        foreach (var n in names) { bytes.AddRange(Encoding.UTF8.GetBytes(n)); bytes.Add(0); }
        var array = bytes.ToArray();
        var header = new FuseInHeader { Len = (uint)array.Length, Opcode = (uint)op, Unique = unique, NodeId = nodeId, Uid = 1000, Gid = 100, Pid = 42 };
        MemoryMarshal.Write(array, in header);
        return array;
    }

    [Fact]
    public void Decodes_rename2_request_with_two_names()
    {
        var raw = Request(FuseOpcode.Rename2, 7, 1, new FuseRename2In { NewDir = 9, Flags = 2 }, "old", "new name");
        var header = MemoryMarshal.Read<FuseInHeader>(raw);
        Assert.Equal((uint)raw.Length, header.Len);
        Assert.Equal(FuseOpcode.Rename2, (FuseOpcode)header.Opcode);
        var r = new FuseRequestReader(raw.AsSpan(40));
        var body = r.Read<FuseRename2In>();
        Assert.Equal(9UL, body.NewDir);
        Assert.Equal(2u, body.Flags);
        Assert.Equal("old", Encoding.UTF8.GetString(r.ReadCString()));
        Assert.Equal("new name", Encoding.UTF8.GetString(r.ReadCString()));
        Assert.True(r.Rest.IsEmpty);
    }

    [Fact]
    public void Decodes_write_request_payload_after_write_in()
    {
        var bytes = new List<byte>(Request(FuseOpcode.Write, 3, 5, new FuseWriteIn { Fh = 11, Offset = 4096, Size = 3 }));
        bytes.AddRange("abc"u8.ToArray());
        var raw = bytes.ToArray();
        var r = new FuseRequestReader(raw.AsSpan(40));
        var w = r.Read<FuseWriteIn>();
        Assert.Equal(11UL, w.Fh);
        Assert.Equal(4096UL, w.Offset);
        Assert.Equal("abc", Encoding.ASCII.GetString(r.ReadBytes((int)w.Size)));
    }

    [Fact]
    public void Short_body_is_zero_extended_and_unterminated_name_rejected()
    {
        var r = new FuseRequestReader(new byte[] { 1, 0, 0, 0 });
        var mknod = r.Read<FuseMkNodIn>();
        Assert.Equal(1u, mknod.Mode);
        Assert.Equal(0u, mknod.Umask);
        Assert.Throws<FuseProtocolException>(() => new FuseRequestReader("abc"u8).ReadCString());
    }

    [Fact]
    public void Compat_setxattr_in_is_read_as_eight_bytes()
    {
        var raw = new byte[] { 5, 0, 0, 0, 1, 0, 0, 0, (byte)'u', 0, 1, 2, 3, 4, 5 };
        var r = new FuseRequestReader(raw);
        var s = r.Read<FuseSetXattrIn>(8);
        Assert.Equal(5u, s.Size);
        Assert.Equal(1u, s.Flags);
        Assert.Equal("u", Encoding.ASCII.GetString(r.ReadCString()));
        Assert.Equal(5, r.Rest.Length);
    }

    [Fact]
    public void Encodes_error_reply_with_negated_errno()
    {
        var buffer = new byte[16];
        int n = FuseReplyEncoder.EncodeError(buffer, 77, LinuxErrno.ENOENT);
        Assert.Equal(16, n);
        var h = MemoryMarshal.Read<FuseOutHeader>(buffer);
        Assert.Equal(16u, h.Len);
        Assert.Equal(-2, h.Error);
        Assert.Equal(77UL, h.Unique);
    }

    [Fact]
    public void Encodes_entry_reply_with_timeouts_and_attributes()
    {
        var attr = new FuseAttr { Ino = 5, Size = 1000, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Uid = 7, Mtime = new FuseTime(100, 5) };
        var entry = new FuseEntry(5, attr) { Generation = 3 };
        var buffer = new byte[16 + 128];
        int n = FuseReplyEncoder.EncodeStruct(buffer, 9, FuseReplyEncoder.ToEntryOut(entry, TimeSpan.FromSeconds(1.5), TimeSpan.FromMilliseconds(250)));
        Assert.Equal(144, n);
        Assert.Equal(144u, MemoryMarshal.Read<FuseOutHeader>(buffer).Len);
        var e = MemoryMarshal.Read<FuseEntryOut>(buffer.AsSpan(16));
        Assert.Equal(5UL, e.NodeId);
        Assert.Equal(3UL, e.Generation);
        Assert.Equal(1UL, e.EntryValid);
        Assert.Equal(500_000_000u, e.EntryValidNsec);
        Assert.Equal(0UL, e.AttrValid);
        Assert.Equal(250_000_000u, e.AttrValidNsec);
        Assert.Equal(1000UL, e.Attr.Size);
        Assert.Equal(2UL, e.Attr.Blocks); // computed from the size
        Assert.Equal(4096u, e.Attr.BlkSize);
        Assert.Equal(100UL, e.Attr.Mtime);
        Assert.Equal(5u, e.Attr.MtimeNsec);
    }

    [Fact]
    public void Encodes_notification_header_with_code_and_zero_unique()
    {
        var buffer = new byte[16];
        FuseReplyEncoder.EncodeNotifyHeader(buffer, FuseNotifyCode.InvalEntry, 20);
        var h = MemoryMarshal.Read<FuseOutHeader>(buffer);
        Assert.Equal(36u, h.Len);
        Assert.Equal(3, h.Error);
        Assert.Equal(0UL, h.Unique);
    }

    [Fact]
    public void Dirents_are_packed_eight_byte_aligned_with_zero_padding()
    {
        var buffer = new byte[128];
        buffer.AsSpan().Fill(0xFF);
        int a = FuseDirentPacker.TryPack(buffer, 10, 1, 8, "a"u8);
        Assert.Equal(32, a); // 24 + 1 → 32
        int b = FuseDirentPacker.TryPack(buffer.AsSpan(a), 11, 2, 4, "eightchr"u8);
        Assert.Equal(32, b); // 24 + 8 exactly
        var first = MemoryMarshal.Read<FuseDirentHeader>(buffer);
        Assert.Equal(10UL, first.Ino);
        Assert.Equal(1UL, first.Off);
        Assert.Equal(1u, first.NameLen);
        Assert.Equal(8u, first.Type);
        Assert.Equal((byte)'a', buffer[24]);
        Assert.All(buffer[25..32], x => Assert.Equal(0, x));
        Assert.Equal("eightchr", Encoding.ASCII.GetString(buffer, 32 + 24, 8));
        Assert.Equal(0, FuseDirentPacker.TryPack(buffer.AsSpan(a + b, 20), 12, 3, 8, "x"u8)); // does not fit
    }

    [Fact]
    public void Direntplus_packs_entry_then_dirent()
    {
        var buffer = new byte[512];
        var entry = FuseReplyEncoder.ToEntryOut(new FuseEntry(42, new FuseAttr { Ino = 42, Mode = ModeBits.S_IFDIR | 0x1ED }), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        int n = FuseDirentPacker.TryPackPlus(buffer, entry, 7, 4, "dir"u8);
        Assert.Equal(160, n); // 128 + 24 + 3 = 155 → 160
        Assert.Equal(42UL, MemoryMarshal.Read<FuseEntryOut>(buffer).NodeId);
        var d = MemoryMarshal.Read<FuseDirentHeader>(buffer.AsSpan(128));
        Assert.Equal(42UL, d.Ino);
        Assert.Equal(7UL, d.Off);
        Assert.Equal(3u, d.NameLen);
        Assert.Equal("dir", Encoding.ASCII.GetString(buffer, 152, 3));
    }

    [Fact]
    public void Dir_list_counts_references_but_not_for_dot_entries()
    {
        var list = new FuseDirList(new byte[4096], plus: true, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        Assert.True(list.AddPlus(".", new FuseEntry(1, new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR }), 1));
        Assert.True(list.AddPlus("..", new FuseEntry(1, new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR }), 2));
        Assert.True(list.AddPlus("f", new FuseEntry(5, new FuseAttr { Ino = 5, Mode = ModeBits.S_IFREG }), 3));
        Assert.Equal(3, list.Count);
        Assert.Equal([5UL], list.Referenced);
        Assert.Equal(3 * 160, list.Length);
    }

    [Fact]
    public void Dir_list_stops_when_full()
    {
        var list = new FuseDirList(new byte[100], plus: false, TimeSpan.Zero, TimeSpan.Zero);
        int added = 0;
        while (list.Add($"name{added}", 2, ModeBits.S_IFREG, added + 1)) added++;
        Assert.Equal(3, added); // 32 bytes each
        Assert.Equal(96, list.Length);
    }

    private static FuseInitIn KernelInit(uint minor, FuseInitFlags offered)
    {
        var init = new FuseInitIn { Major = 7, Minor = minor, MaxReadahead = 128 * 1024, Flags = (uint)((ulong)offered & 0xFFFFFFFF), Flags2 = (uint)((ulong)offered >> 32) };
        return init;
    }

    private const FuseInitFlags Everything = (FuseInitFlags)0x0000_000F_FFFF_FFFF;

    [Fact]
    public void Init_negotiates_requested_features_and_1MiB_writes()
    {
        var result = FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest());
        Assert.Equal(0, result.Errno);
        var f = result.Flags;
        foreach (var want in new[] { FuseInitFlags.AsyncRead, FuseInitFlags.ParallelDirops, FuseInitFlags.DoReaddirplus, FuseInitFlags.ReaddirplusAuto,
                     FuseInitFlags.AtomicOTrunc, FuseInitFlags.PosixLocks, FuseInitFlags.FlockLocks, FuseInitFlags.ExportSupport, FuseInitFlags.MaxPages })
            Assert.True((f & want) != 0, $"{want} not negotiated");
        Assert.Equal(FuseInitFlags.None, f & FuseInitFlags.WritebackCache);
        Assert.Equal(FuseInitFlags.None, f & FuseInitFlags.SpliceRead);
        Assert.Equal(7u, result.Reply.Major);
        Assert.Equal(38u, result.Reply.Minor); // never above what we implement
        Assert.Equal(1u << 20, result.Reply.MaxWrite);
        Assert.Equal((ushort)256, result.Reply.MaxPages);
        Assert.Equal(128u * 1024, result.Reply.MaxReadahead);
        Assert.Equal((uint)((ulong)f & 0xFFFFFFFF), result.Reply.Flags);
    }

    [Fact]
    public void Init_posix_acls_come_with_the_umask_left_to_the_filesystem()
    {
        Assert.Equal(FuseInitFlags.None, FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest()).Flags
            & (FuseInitFlags.PosixAcl | FuseInitFlags.DontMask));
        var agreed = FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest { PosixAcl = true }).Flags;
        Assert.Equal(FuseInitFlags.PosixAcl | FuseInitFlags.DontMask, agreed & (FuseInitFlags.PosixAcl | FuseInitFlags.DontMask));
    }

    [Fact]
    public void Init_auto_inval_data_is_asked_for_unless_the_filesystem_invalidates_itself()
    {
        Assert.Equal(FuseInitFlags.AutoInvalData, FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest()).Flags & FuseInitFlags.AutoInvalData);
        var agreed = FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest { AutoInvalData = false }).Flags;
        Assert.Equal(FuseInitFlags.None, agreed & FuseInitFlags.AutoInvalData);
    }

    [Fact]
    public void Init_killpriv_v2_only_when_the_filesystem_drops_privileges_itself()
    {
        Assert.Equal(FuseInitFlags.None, FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest()).Flags & FuseInitFlags.HandleKillprivV2);
        var agreed = FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest { HandleKillprivV2 = true }).Flags;
        Assert.Equal(FuseInitFlags.HandleKillprivV2, agreed & FuseInitFlags.HandleKillprivV2);
    }

    [Fact]
    public void Init_asks_for_shared_mappings_of_direct_io_files_in_flags2()
    {
        var result = FuseInitNegotiation.Negotiate(KernelInit(45, Everything | FuseInitFlags.DirectIoAllowMmap), new FuseInitRequest());
        Assert.Equal(FuseInitFlags.DirectIoAllowMmap, result.Flags & FuseInitFlags.DirectIoAllowMmap);
        Assert.Equal(1u << 4, result.Reply.Flags2 & (1u << 4));
        Assert.Equal(FuseInitFlags.None, FuseInitNegotiation.Negotiate(KernelInit(45, Everything), new FuseInitRequest()).Flags & FuseInitFlags.DirectIoAllowMmap);
    }

    [Fact]
    public void Init_writeback_cache_is_negotiable_and_flags_are_limited_to_the_offer()
    {
        var offered = FuseInitFlags.AsyncRead | FuseInitFlags.WritebackCache | FuseInitFlags.PosixLocks;
        var result = FuseInitNegotiation.Negotiate(KernelInit(31, offered), new FuseInitRequest { WritebackCache = true, PosixLocks = false });
        Assert.Equal(FuseInitFlags.AsyncRead | FuseInitFlags.WritebackCache, result.Flags);
        Assert.Equal(31u, result.Reply.Minor);
        Assert.Equal(32u * 4096, result.MaxWrite); // without MAX_PAGES the kernel caps requests at 32 pages
    }

    [Fact]
    public void Init_rejects_kernels_older_than_7_31_and_answers_newer_majors_with_ours()
    {
        var old = FuseInitNegotiation.Negotiate(KernelInit(30, Everything), new FuseInitRequest());
        Assert.Equal(LinuxErrno.EPROTO, old.Errno);
        var newer = FuseInitNegotiation.Negotiate(new FuseInitIn { Major = 8, Minor = 0 }, new FuseInitRequest());
        Assert.Equal(0, newer.Errno);
        Assert.Equal(7u, newer.Reply.Major);
        Assert.Equal(0u, newer.MaxWrite); // not settled: the kernel retries
    }

    [Fact]
    public void Lookup_counter_forgets_at_zero()
    {
        var c = new Session.LookupCounter();
        c.Add(5); c.Add(5); c.Add(5);
        Assert.False(c.Forget(5, 2));
        Assert.Equal(1UL, c.Get(5));
        Assert.True(c.Forget(5, 1));
        Assert.Equal(0UL, c.Get(5));
        Assert.False(c.Forget(6, 1)); // unknown node: nothing to forget
    }

    [Fact]
    public void Mountinfo_lookup_finds_device_and_unescapes_spaces()
    {
        const string text = "36 35 98:0 / /mnt1 rw - ext3 /dev/root rw\n" +
                            "40 36 0:53 / /tmp/with\\040space rw,nosuid - fuse.memoryfs memoryfs rw\n";
        Assert.Equal("0:53", Mounting.MountInfo.FindDevice("/tmp/with space", text));
        Assert.Equal("98:0", Mounting.MountInfo.FindDevice("/mnt1", text));
        Assert.Null(Mounting.MountInfo.FindDevice("/nope", text));
    }

    [Fact]
    public void Mount_data_carries_fd_rootmode_ids_and_options()
    {
        var data = Mounting.FuseMounter.BuildMountData(5, new FuseMountOptions { AllowOther = true, RootMode = ModeBits.S_IFREG }, 0, 0);
        Assert.Equal("fd=5,rootmode=100000,user_id=0,group_id=0,allow_other,default_permissions,max_read=1048576", data);
    }
}
