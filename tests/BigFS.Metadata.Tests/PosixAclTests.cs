using System.Buffers.Binary;
using BigFS.Core;
using BigFS.Metadata.Logic;
using BigFS.Protocol;
using Google.Protobuf;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

/// <summary>POSIX ACLs: the xattr codec, and the namespace keeping an access ACL and the mode one thing.</summary>
public class PosixAclTests
{
    private const ulong Root = 1;
    private const uint Any = uint.MaxValue;
    private const ushort UserObj = 0x01, User = 0x02, GroupObj = 0x04, Group = 0x08, Mask = 0x10, Other = 0x20;
    private readonly Harness _h = new();

    internal static byte[] Acl(params (ushort Tag, ushort Perm, uint Id)[] entries)
    {
        var value = new byte[4 + 8 * entries.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(value, 2);
        for (var i = 0; i < entries.Length; i++)
        {
            var at = value.AsSpan(4 + 8 * i);
            BinaryPrimitives.WriteUInt16LittleEndian(at, entries[i].Tag);
            BinaryPrimitives.WriteUInt16LittleEndian(at[2..], entries[i].Perm);
            BinaryPrimitives.WriteUInt32LittleEndian(at[4..], entries[i].Id);
        }
        return value;
    }

    private static readonly byte[] Minimal644 = Acl((UserObj, 6, Any), (GroupObj, 4, Any), (Other, 4, Any));
    private static readonly byte[] Extended = Acl((UserObj, 6, Any), (User, 5, 1000), (GroupObj, 4, Any), (Mask, 5, Any), (Other, 0, Any));

    [Fact]
    public void A_minimal_acl_is_the_mode_itself()
    {
        Assert.True(PosixAcl.TryParse(Minimal644, out var acl));
        Assert.True(acl!.IsEquivalentToMode);
        Assert.Equal(0x1A4, acl.PermissionBits);   // 0644
    }

    [Fact]
    public void An_extended_acl_takes_the_group_triad_from_its_mask_and_follows_a_chmod()
    {
        Assert.True(PosixAcl.TryParse(Extended, out var acl));
        Assert.False(acl!.IsEquivalentToMode);
        Assert.Equal(0x1A8, acl.PermissionBits);   // 0650
        Assert.True(PosixAcl.TryParse(acl.WithPermissionBits(0x1E1), out var after));   // chmod 0741
        Assert.Equal(0x1E1, after!.PermissionBits);
        Assert.Equal(Acl((UserObj, 7, Any), (User, 5, 1000), (GroupObj, 4, Any), (Mask, 4, Any), (Other, 1, Any)), after.ToBytes());
    }

    public static TheoryData<byte[]> Malformed => new()
    {
        Array.Empty<byte>(),
        new byte[] { 2, 0, 0, 0 },                                                      // no entries
        Acl((UserObj, 6, Any), (GroupObj, 4, Any), (Other, 4, Any))[..^1],              // torn entry
        new byte[] { 1, 0, 0, 0 }.Concat(Minimal644[4..]).ToArray(),                      // version 1
        Acl((UserObj, 6, Any), (GroupObj, 4, Any)),                                     // no other
        Acl((UserObj, 6, Any), (UserObj, 6, Any), (GroupObj, 4, Any), (Other, 4, Any)), // owner twice
        Acl((UserObj, 6, Any), (User, 5, 7), (GroupObj, 4, Any), (Other, 4, Any)),      // named entry, no mask
        Acl((UserObj, 8, Any), (GroupObj, 4, Any), (Other, 4, Any)),                    // permission beyond rwx
        Acl((UserObj, 6, Any), (0x40, 4, Any), (GroupObj, 4, Any), (Other, 4, Any)),    // unknown tag
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task A_malformed_acl_is_EINVAL_and_changes_nothing(byte[] value)
    {
        Assert.False(PosixAcl.TryParse(value, out _));
        var f = await _h.Create(Root, "f");
        var r = await SetAsync(f, PosixAcl.AccessXattr, value);
        Assert.Equal(Errno.EINVAL, r.Errno);
        Assert.Equal(0x81A4u, _h.Attr(f).Mode);
        Assert.Empty(_h.Ns.ListXattr(new InodeRequest { Ino = f }).Names);
    }

    [Fact]
    public async Task Setting_a_minimal_access_acl_sets_the_mode_and_stores_nothing()
    {
        var f = await _h.Create(Root, "f", mode: 0x180);   // 0600
        Assert.Equal(0, (await SetAsync(f, PosixAcl.AccessXattr, Minimal644)).Errno);
        Assert.Equal(0x81A4u, _h.Attr(f).Mode);
        Assert.Empty(_h.Ns.ListXattr(new InodeRequest { Ino = f }).Names);
        Assert.Equal(Errno.ENODATA, _h.Ns.GetXattr(new GetXattrRequest { Ino = f, Name = Name(PosixAcl.AccessXattr) }).Errno);
    }

    [Fact]
    public async Task An_extended_access_acl_is_stored_sets_the_mode_and_follows_chmod_until_replaced_by_a_minimal_one()
    {
        var f = await _h.Create(Root, "f", mode: 0xDA4);   // 06644: set-id bits stay as they are
        Assert.Equal(0, (await SetAsync(f, PosixAcl.AccessXattr, Extended)).Errno);
        Assert.Equal(0x8DA8u, _h.Attr(f).Mode);            // 06650
        Assert.Equal(Extended, Stored(f));

        await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 1, Mode = 0x1E1 });   // chmod 0741
        Assert.True(PosixAcl.TryParse(Stored(f), out var acl));
        Assert.Equal(0x1E1, acl!.PermissionBits);

        Assert.Equal(0, (await SetAsync(f, PosixAcl.AccessXattr, Minimal644)).Errno);
        Assert.Equal(0x81A4u, _h.Attr(f).Mode);
        Assert.Empty(_h.Ns.ListXattr(new InodeRequest { Ino = f }).Names);
    }

    [Fact]
    public async Task A_default_acl_is_for_directories_and_removing_an_absent_acl_is_no_error()
    {
        var f = await _h.Create(Root, "f");
        var d = await _h.Create(Root, "d", InodeType.Directory, 0x1ED);
        Assert.Equal(Errno.EACCES, (await SetAsync(f, PosixAcl.DefaultXattr, Minimal644)).Errno);
        Assert.Equal(0, (await SetAsync(d, PosixAcl.DefaultXattr, Minimal644)).Errno);
        Assert.Equal(Minimal644, _h.Ns.GetXattr(new GetXattrRequest { Ino = d, Name = Name(PosixAcl.DefaultXattr) }).Value.ToByteArray());
        Assert.Equal(0x41EDu, _h.Attr(d).Mode);            // a default ACL leaves the mode alone
        Assert.Equal(0, (await _h.Ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = f, Name = Name(PosixAcl.AccessXattr) })).Errno);
        Assert.Equal(Errno.ENODATA, (await _h.Ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = f, Name = Name("user.none") })).Errno);
    }

    private Task<StatusReply> SetAsync(ulong ino, string name, byte[] value) =>
        _h.Ns.SetXattrAsync(new SetXattrRequest { Ino = ino, Name = Name(name), Value = ByteString.CopyFrom(value) });

    private byte[] Stored(ulong ino) =>
        _h.Ns.GetXattr(new GetXattrRequest { Ino = ino, Name = Name(PosixAcl.AccessXattr) }).Value.ToByteArray();

    // ---- creation: the umask, or the directory's default ACL ----

    private async Task<EntryReply> CreateIn(ulong parent, string name, InodeType type, uint mode, uint umask) =>
        await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = parent, Name = Name(name), Type = type, Mode = mode, Exclusive = true, Umask = umask });

    private byte[]? XattrOf(ulong ino, string name)
    {
        var reply = _h.Ns.GetXattr(new GetXattrRequest { Ino = ino, Name = Name(name) });
        return reply.Errno == 0 ? reply.Value.ToByteArray() : null;
    }

    [Fact]
    public async Task Without_a_default_acl_a_new_node_gets_the_mode_less_the_umask()
    {
        var f = await CreateIn(Root, "f", InodeType.File, 0x1B6, umask: 0x12);   // 0666, umask 022
        Assert.Equal(0x1A4u, f.Attr.Mode & 0xFFF);   // 0644
        Assert.False(f.HasXattrs);
        var d = await CreateIn(Root, "d", InodeType.Directory, 0xBFF, umask: 0x3F);   // 05777 (setuid, sticky), umask 077
        Assert.Equal(0xA00u | 0x1C0, d.Attr.Mode & 0xFFF);   // special bits kept: 05700
    }

    [Fact]
    public async Task A_default_acl_is_inherited_limited_by_the_create_mode_and_the_umask_is_ignored()
    {
        var dir = await _h.Create(Root, "d", InodeType.Directory, 0x1ED);
        var defaults = Acl((UserObj, 7, Any), (User, 5, 1001), (GroupObj, 5, Any), (Mask, 7, Any), (Other, 1, Any));
        Assert.Equal(0, (await _h.Ns.SetXattrAsync(new SetXattrRequest { Ino = dir, Name = Name(PosixAcl.DefaultXattr), Value = ByteString.CopyFrom(defaults) })).Errno);

        var f = await CreateIn(dir, "f", InodeType.File, 0x1B6, umask: 0x3F);   // 0666 under umask 077
        Assert.Equal(0x1B0u, f.Attr.Mode & 0x1FF);   // 0660: owner rw, mask rw (the group class), other none
        Assert.True(f.HasXattrs);
        Assert.Equal(Acl((UserObj, 6, Any), (User, 5, 1001), (GroupObj, 5, Any), (Mask, 6, Any), (Other, 0, Any)), XattrOf(f.Attr.Ino, PosixAcl.AccessXattr));
        Assert.Null(XattrOf(f.Attr.Ino, PosixAcl.DefaultXattr));

        var sub = await CreateIn(dir, "sub", InodeType.Directory, 0x1E8, umask: 0x3F);   // 0750
        Assert.Equal(0x1E8u, sub.Attr.Mode & 0x1FF);
        Assert.Equal(defaults, XattrOf(sub.Attr.Ino, PosixAcl.DefaultXattr));   // and passes it on

        var link = await _h.Ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = dir, Name = Name("ln"), Type = InodeType.Symlink, SymlinkTarget = Name("f"), Exclusive = true, Umask = 0x3F });
        Assert.False(link.HasXattrs);   // symlinks have no ACLs
        Assert.Equal(0x1FFu, link.Attr.Mode & 0x1FF);
    }

    [Fact]
    public async Task An_inherited_acl_the_mode_can_express_is_not_stored()
    {
        var dir = await _h.Create(Root, "d", InodeType.Directory, 0x1ED);
        await _h.Ns.SetXattrAsync(new SetXattrRequest { Ino = dir, Name = Name(PosixAcl.DefaultXattr), Value = ByteString.CopyFrom(Acl((UserObj, 7, Any), (GroupObj, 5, Any), (Other, 5, Any))) });
        var f = await CreateIn(dir, "f", InodeType.File, 0x1B6, umask: 0x3F);
        Assert.Equal(0x1A4u, f.Attr.Mode & 0x1FF);   // 0644: the umask ignored, the default ACL applied
        Assert.False(f.HasXattrs);
        Assert.Null(XattrOf(f.Attr.Ino, PosixAcl.AccessXattr));
    }
}
