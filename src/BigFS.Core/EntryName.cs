namespace BigFS.Core;

/// <summary>Validation of one path component: 1–255 bytes, no '/', no NUL, not "." or "..".</summary>
public static class EntryName
{
    public const int MaxLength = 255;

    /// <returns>0 when valid, otherwise the errno to return (EINVAL, ENAMETOOLONG).</returns>
    public static int Validate(ReadOnlySpan<byte> name)
    {
        if (name.Length == 0)
            return Errno.EINVAL;
        if (name.Length > MaxLength)
            return Errno.ENAMETOOLONG;
        if (name.IndexOfAny((byte)'/', (byte)0) >= 0)
            return Errno.EINVAL;
        if (name is [(byte)'.'] or [(byte)'.', (byte)'.'])
            return Errno.EINVAL;
        return 0;
    }
}
