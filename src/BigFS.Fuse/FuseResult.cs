namespace BigFS.Fuse;

/// <summary>A value or a positive errno. Handlers return the value directly or <c>new FuseError(errno)</c>.</summary>
public readonly struct FuseResult<T>
{
    public FuseResult(T value) { Value = value; Errno = 0; }
    private FuseResult(int errno) { Value = default!; Errno = errno; }

    public T Value { get; }
    /// <summary>0 on success, else a positive Linux errno.</summary>
    public int Errno { get; }
    public bool IsOk => Errno == 0;

    public static FuseResult<T> Fail(int errno) =>
        errno > 0 ? new(errno) : throw new ArgumentOutOfRangeException(nameof(errno), "errno must be positive");

    public static implicit operator FuseResult<T>(T value) => new(value);
    public static implicit operator FuseResult<T>(FuseError error) => Fail(error.Errno);
}

/// <summary>An errno that converts to any <see cref="FuseResult{T}"/>.</summary>
public readonly record struct FuseError(int Errno);
