using BigFS.Fuse.Protocol;

namespace BigFS.Fuse;

/// <summary>An open file or directory handle and how the kernel should treat its cache.</summary>
public readonly record struct FuseOpenResult(ulong Fh, FuseOpenFlags Flags = FuseOpenFlags.None);

/// <summary>CREATE's result: the new entry and its open handle.</summary>
public readonly record struct FuseCreateResult(FuseEntry Entry, FuseOpenResult Open);
