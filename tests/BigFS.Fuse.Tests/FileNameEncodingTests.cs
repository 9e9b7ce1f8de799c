using System.Text;

namespace BigFS.Fuse.Tests;

public class FileNameEncodingTests
{
    [Theory]
    [InlineData("plain")]
    [InlineData("café")]
    [InlineData("日本語.txt")]
    [InlineData("emoji 😀 name")]
    public void ValidUtf8ReadsAsText(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        Assert.Equal(text, FileNameEncoding.GetString(bytes));
        Assert.Equal(bytes, FileNameEncoding.GetBytes(text));
        Assert.Equal(bytes.Length, FileNameEncoding.GetByteCount(text));
    }

    [Fact]
    public void EveryByteSequenceSurvivesTheRoundTrip()
    {
        var random = new Random(7);
        var destination = new byte[64];
        for (int i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(1, 40)];
            random.NextBytes(bytes);
            var name = FileNameEncoding.GetString(bytes);
            Assert.Equal(bytes, FileNameEncoding.GetBytes(name));
            Assert.Equal(bytes.Length, FileNameEncoding.GetByteCount(name));
            Assert.True(FileNameEncoding.TryGetBytes(name, destination, out int written));
            Assert.Equal(bytes, destination[..written]);
        }
    }

    [Fact]
    public void InvalidBytesBecomeLoneSurrogatesBesideTheTextAroundThem()
    {
        // Latin-1 "café", a lone continuation byte next to an emoji, and UTF-8's encoding of a surrogate (never valid).
        Assert.Equal("caf\uDCE9", FileNameEncoding.GetString([0x63, 0x61, 0x66, 0xE9]));
        byte[] mixed = [0x80, .. Encoding.UTF8.GetBytes("😀"), 0xFF];
        Assert.Equal("\uDC80😀\uDCFF", FileNameEncoding.GetString(mixed));
        Assert.Equal(mixed, FileNameEncoding.GetBytes("\uDC80😀\uDCFF"));
        byte[] encodedSurrogate = [0xED, 0xB2, 0x80];
        Assert.Equal(encodedSurrogate, FileNameEncoding.GetBytes(FileNameEncoding.GetString(encodedSurrogate)));
    }

    [Fact]
    public void TooSmallADestinationIsRefused()
    {
        Span<byte> destination = stackalloc byte[3];
        Assert.False(FileNameEncoding.TryGetBytes("caf\uDCE9", destination, out _));
        Assert.True(FileNameEncoding.TryGetBytes("ab\uDCE9", destination, out int written));
        Assert.Equal(3, written);
    }
}
