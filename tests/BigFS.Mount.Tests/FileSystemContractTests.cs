using BigFS.Fuse;
using BigFS.Testing;

namespace BigFS.Mount.Tests;

public class FileSystemContractTests
{
    [Fact]
    public void EveryOperationMethodOfTheMountImplementsTheInterface() =>
        Assert.Empty(InterfaceContract.LookAlikes(typeof(BigFsFileSystem), typeof(IFuseFileSystem)));
}
