using System.Buffers.Binary;
using BigFS.Core;

namespace BigFS.Metadata.Logic;

/// <summary>
/// A POSIX ACL in the kernel's extended-attribute form (<c>system.posix_acl_access</c>,
/// <c>system.posix_acl_default</c>): a 4-byte version (2), then 8-byte entries (tag, permission
/// bits, id). An access ACL and the mode's permission bits are two views of the same thing
/// (POSIX.1e): the owner, group-class and other entries are the mode's three triads, so setting
/// one sets the other. An ACL with only those three entries is the mode itself and is not
/// stored at all — as local filesystems do, and as <c>cp -a</c> relies on: it copies such an
/// ACL along with every file, and a stored copy would go stale at the next chmod.
/// </summary>
public sealed class PosixAcl
{
    public const string AccessXattr = "system.posix_acl_access";
    public const string DefaultXattr = "system.posix_acl_default";
    /// <summary>The names as stored (xattr names are bytes).</summary>
    public static ReadOnlySpan<byte> AccessXattrName => XattrName.AclAccess;
    public static ReadOnlySpan<byte> DefaultXattrName => XattrName.AclDefault;

    /// <summary><see cref="AccessXattr"/> or <see cref="DefaultXattr"/> when <paramref name="name"/> is one of them, else null.</summary>
    public static string? KindOf(ReadOnlySpan<byte> name) =>
        name.SequenceEqual(AccessXattrName) ? AccessXattr
        : name.SequenceEqual(DefaultXattrName) ? DefaultXattr
        : null;

    private const uint Version = 2;
    private const int HeaderSize = 4, EntrySize = 8;

    [Flags]
    private enum Tag : ushort
    {
        UserObj = 0x01, User = 0x02, GroupObj = 0x04, Group = 0x08, Mask = 0x10, Other = 0x20,
    }

    private readonly byte[] _value;
    private readonly int _userObj, _groupObj, _other, _maskAt;

    private PosixAcl(byte[] value, int userObj, int groupObj, int other, int maskAt, bool named)
    {
        _value = value;
        _userObj = userObj;
        _groupObj = groupObj;
        _other = other;
        _maskAt = maskAt;
        HasNamedEntries = named;
    }

    /// <summary>Named user or group entries (which the mode cannot express).</summary>
    public bool HasNamedEntries { get; }

    /// <summary>Only the owner, owning-group and other entries: the ACL is the mode's permission bits, nothing more.</summary>
    public bool IsEquivalentToMode => !HasNamedEntries && _maskAt < 0;

    /// <summary>The mode's permission bits (0777) this ACL implies: the group triad is the mask when there is one.</summary>
    public int PermissionBits =>
        (PermAt(_userObj) << 6) | (PermAt(_maskAt >= 0 ? _maskAt : _groupObj) << 3) | PermAt(_other);

    /// <summary>
    /// Parses and validates as the kernel does: version 2; owner, owning group and other exactly
    /// once; a mask exactly when there are named entries (at most one); permissions within rwx.
    /// An empty value (the ACL removed) is not an ACL.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> value, out PosixAcl? acl)
    {
        acl = null;
        if (value.Length < HeaderSize + EntrySize || (value.Length - HeaderSize) % EntrySize != 0
            || BinaryPrimitives.ReadUInt32LittleEndian(value) != Version)
            return false;
        int userObj = -1, groupObj = -1, other = -1, mask = -1;
        var named = false;
        for (var at = HeaderSize; at < value.Length; at += EntrySize)
        {
            if (BinaryPrimitives.ReadUInt16LittleEndian(value[(at + 2)..]) > 7)
                return false;
            switch ((Tag)BinaryPrimitives.ReadUInt16LittleEndian(value[at..]))
            {
                case Tag.UserObj when userObj < 0: userObj = at; break;
                case Tag.GroupObj when groupObj < 0: groupObj = at; break;
                case Tag.Other when other < 0: other = at; break;
                case Tag.Mask when mask < 0: mask = at; break;
                case Tag.User or Tag.Group: named = true; break;
                default: return false;   // unknown tag, or a single-instance entry repeated
            }
        }
        if (userObj < 0 || groupObj < 0 || other < 0 || (named && mask < 0))
            return false;
        acl = new PosixAcl(value.ToArray(), userObj, groupObj, other, mask, named);
        return true;
    }

    /// <summary>The ACL after a chmod to <paramref name="mode"/>: owner, group class (mask, else owning group) and other take its triads.</summary>
    public byte[] WithPermissionBits(int mode)
    {
        var value = (byte[])_value.Clone();
        SetPerm(value, _userObj, (mode >> 6) & 7);
        SetPerm(value, _maskAt >= 0 ? _maskAt : _groupObj, (mode >> 3) & 7);
        SetPerm(value, _other, mode & 7);
        return value;
    }

    /// <summary>
    /// The access ACL of a node created under a directory with this default ACL (POSIX.1e, as
    /// the kernel's posix_acl_create): the create mode's triads limit the owner, the group class
    /// (the mask, else the owning group) and other. The umask plays no part.
    /// </summary>
    public PosixAcl ForNewNode(int createMode)
    {
        var value = (byte[])_value.Clone();
        var groupClass = _maskAt >= 0 ? _maskAt : _groupObj;
        SetPerm(value, _userObj, PermAt(_userObj) & (createMode >> 6) & 7);
        SetPerm(value, groupClass, PermAt(groupClass) & (createMode >> 3) & 7);
        SetPerm(value, _other, PermAt(_other) & createMode & 7);
        return new PosixAcl(value, _userObj, _groupObj, _other, _maskAt, HasNamedEntries);
    }

    /// <summary>The value as given (validated).</summary>
    public byte[] ToBytes() => (byte[])_value.Clone();

    private int PermAt(int at) => BinaryPrimitives.ReadUInt16LittleEndian(_value.AsSpan(at + 2));

    private static void SetPerm(byte[] value, int at, int perm) =>
        BinaryPrimitives.WriteUInt16LittleEndian(value.AsSpan(at + 2), (ushort)perm);
}
