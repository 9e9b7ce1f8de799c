using BigFS.Core;

namespace BigFS.Core.Tests;

public class XattrNameTests
{
    [Theory]
    [InlineData("user.a", 0)]
    [InlineData("trusted.a", 0)]
    [InlineData("security.capability", 0)]
    [InlineData("system.posix_acl_access", 0)]
    [InlineData("system.posix_acl_default", 0)]
    [InlineData("user.", Errno.EINVAL)]
    [InlineData("security.", Errno.EINVAL)]
    [InlineData("system.other", Errno.EOPNOTSUPP)]
    [InlineData("bogus.a", Errno.EOPNOTSUPP)]
    [InlineData("user", Errno.EOPNOTSUPP)]
    [InlineData("", Errno.ERANGE)]
    public void FollowsLinuxNamespaces(string name, int errno)
    {
        Assert.Equal(errno, XattrName.Validate(System.Text.Encoding.UTF8.GetBytes(name)));
    }

    [Fact]
    public void NamesOver255BytesAreOutOfRange()
    {
        Assert.Equal(0, XattrName.Validate(System.Text.Encoding.UTF8.GetBytes("user." + new string('é', 125))));   // 5 + 250 bytes
        Assert.Equal(Errno.ERANGE, XattrName.Validate(System.Text.Encoding.UTF8.GetBytes("user." + new string('é', 126))));
    }
}
