using BigFS.Fuse.MemoryFs;
using BigFS.Testing;

namespace BigFS.Fuse.Tests;

public class FileSystemContractTests
{
    [Theory]
    [InlineData(typeof(MemoryFileSystem))]
    [InlineData(typeof(NullFileSystem))]
    public void EveryOperationMethodImplementsTheInterface(Type fileSystem) =>
        Assert.Empty(InterfaceContract.LookAlikes(fileSystem, typeof(IFuseFileSystem)));
}
