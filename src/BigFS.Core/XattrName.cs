namespace BigFS.Core;

/// <summary>
/// Validation of an extended attribute's name as Linux filesystems answer it: 1–255 bytes, in
/// the user, trusted or security namespace (a bare prefix is EINVAL), or one of the two POSIX
/// ACLs of the system namespace; any other name is EOPNOTSUPP. The kernel hands a FUSE
/// filesystem every name unfiltered, so the filesystem says this itself.
/// </summary>
public static class XattrName
{
    public const int MaxLength = 255;

    public static ReadOnlySpan<byte> AclAccess => "system.posix_acl_access"u8;
    public static ReadOnlySpan<byte> AclDefault => "system.posix_acl_default"u8;

    /// <returns>0 when valid, otherwise the errno to return (ERANGE, EINVAL, EOPNOTSUPP).</returns>
    public static int Validate(ReadOnlySpan<byte> name)
    {
        if (name.Length is 0 or > MaxLength)
            return Errno.ERANGE;
        foreach (var prefix in (ReadOnlySpan<string>)["user.", "trusted.", "security."])
            if (StartsWith(name, prefix))
                return name.Length == prefix.Length ? Errno.EINVAL : 0;
        return name.SequenceEqual(AclAccess) || name.SequenceEqual(AclDefault) ? 0 : Errno.EOPNOTSUPP;
    }

    private static bool StartsWith(ReadOnlySpan<byte> name, string asciiPrefix)
    {
        if (name.Length < asciiPrefix.Length)
            return false;
        for (var i = 0; i < asciiPrefix.Length; i++)
            if (name[i] != asciiPrefix[i])
                return false;
        return true;
    }
}
