namespace BigFS.Fuse;

/// <summary>Filesystem statistics (struct fuse_kstatfs).</summary>
public readonly record struct FuseStatFs(ulong Blocks, ulong BlocksFree, ulong BlocksAvailable,
    ulong Files, ulong FilesFree, uint BlockSize, uint NameMax = 255, uint FragmentSize = 0);
