namespace BigFS.Fuse;

public enum FuseLockType : uint { Read = 0, Write = 1, Unlock = 2 }

/// <summary>A byte-range lock (struct fuse_file_lock); End is inclusive, long.MaxValue = to EOF.</summary>
public readonly record struct FuseFileLock(long Start, long End, FuseLockType Type, uint Pid);
