using BigFS.Core;

namespace BigFS.Core.Tests;

public class ChunkIdTests
{
    [Fact]
    public void RoundTripsThroughText()
    {
        var id = ChunkId.NewRandom();
        Assert.Equal(id, ChunkId.Parse(id.ToString()));
        Assert.Equal(32, id.ToString().Length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("../../etc/passwd")]
    [InlineData("0123456789abcdef0123456789abcde")]
    [InlineData("0123456789abcdef0123456789abcdef0")]
    [InlineData("0123456789ABCDEF0123456789abcdef")]
    [InlineData("0123456789abcdef/123456789abcdef")]
    [InlineData("..23456789abcdef0123456789abcdef")]
    public void RejectsAnythingButThirtyTwoLowercaseHexDigits(string text)
    {
        Assert.False(ChunkId.IsValid(text));
        Assert.Throws<FormatException>(() => ChunkId.Parse(text));
    }

    [Theory]
    [InlineData("", Errno.EINVAL)]
    [InlineData(".", Errno.EINVAL)]
    [InlineData("..", Errno.EINVAL)]
    [InlineData("a/b", Errno.EINVAL)]
    [InlineData("a\0b", Errno.EINVAL)]
    [InlineData("ok", 0)]
    [InlineData("...", 0)]
    public void ValidatesEntryNames(string name, int errno) =>
        Assert.Equal(errno, EntryName.Validate(System.Text.Encoding.UTF8.GetBytes(name)));

    [Fact]
    public void RejectsNamesOver255Bytes()
    {
        Assert.Equal(0, EntryName.Validate(new byte[255].AsSpan().ToArray().Select(_ => (byte)'x').ToArray()));
        Assert.Equal(Errno.ENAMETOOLONG, EntryName.Validate(Enumerable.Repeat((byte)'x', 256).ToArray()));
    }
}
