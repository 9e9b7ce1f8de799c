using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BigFS.Fuse.Protocol;

/// <summary>Sequential decoder over a request body: fixed structs, then NUL-terminated names or raw bytes.</summary>
public ref struct FuseRequestReader(ReadOnlySpan<byte> body)
{
    private ReadOnlySpan<byte> _rest = body;

    public readonly ReadOnlySpan<byte> Rest => _rest;

    /// <summary>Reads a struct; a shorter body (older kernels' compat sizes) is zero-extended.</summary>
    public T Read<T>() where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (_rest.Length >= size)
        {
            var value = MemoryMarshal.Read<T>(_rest);
            _rest = _rest[size..];
            return value;
        }
        T padded = default;
        _rest.CopyTo(MemoryMarshal.AsBytes(new Span<T>(ref padded)));
        _rest = default;
        return padded;
    }

    /// <summary>Reads a struct of an explicit wire size (e.g. the 8-byte compat setxattr_in).</summary>
    public T Read<T>(int wireSize) where T : unmanaged
    {
        if (_rest.Length < wireSize) throw new FuseProtocolException($"body too short for {typeof(T).Name}");
        T value = default;
        _rest[..Math.Min(wireSize, Unsafe.SizeOf<T>())].CopyTo(MemoryMarshal.AsBytes(new Span<T>(ref value)));
        _rest = _rest[wireSize..];
        return value;
    }

    /// <summary>Reads a NUL-terminated name (without the NUL).</summary>
    public ReadOnlySpan<byte> ReadCString()
    {
        int nul = _rest.IndexOf((byte)0);
        if (nul < 0) throw new FuseProtocolException("name is not NUL-terminated");
        var name = _rest[..nul];
        _rest = _rest[(nul + 1)..];
        return name;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if ((uint)count > (uint)_rest.Length) throw new FuseProtocolException("body too short");
        var bytes = _rest[..count];
        _rest = _rest[count..];
        return bytes;
    }
}

/// <summary>A malformed request from the kernel (answered EINVAL/EIO, never trusted).</summary>
public sealed class FuseProtocolException(string message) : Exception(message);
