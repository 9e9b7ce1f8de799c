using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BigFS.Fuse.Protocol;

namespace BigFS.Fuse.Tests;

/// <summary>Struct sizes and field offsets match the kernel's linux/fuse.h (7.38) on x86-64/aarch64.</summary>
public class ProtocolStructTests
{
    // sizeof() of each struct, as compiled from /usr/include/linux/fuse.h.
    public static TheoryData<string, int, int> Sizes() => new()
    {
        { "fuse_in_header", Unsafe.SizeOf<FuseInHeader>(), 40 },
        { "fuse_out_header", Unsafe.SizeOf<FuseOutHeader>(), 16 },
        { "fuse_attr", Unsafe.SizeOf<FuseAttrAbi>(), 88 },
        { "fuse_kstatfs", Unsafe.SizeOf<FuseKStatFs>(), 80 },
        { "fuse_file_lock", Unsafe.SizeOf<FuseFileLockAbi>(), 24 },
        { "fuse_entry_out", Unsafe.SizeOf<FuseEntryOut>(), 128 },
        { "fuse_forget_in", Unsafe.SizeOf<FuseForgetIn>(), 8 },
        { "fuse_forget_one", Unsafe.SizeOf<FuseForgetOne>(), 16 },
        { "fuse_batch_forget_in", Unsafe.SizeOf<FuseBatchForgetIn>(), 8 },
        { "fuse_getattr_in", Unsafe.SizeOf<FuseGetAttrIn>(), 16 },
        { "fuse_attr_out", Unsafe.SizeOf<FuseAttrOut>(), 104 },
        { "fuse_mknod_in", Unsafe.SizeOf<FuseMkNodIn>(), 16 },
        { "fuse_mkdir_in", Unsafe.SizeOf<FuseMkDirIn>(), 8 },
        { "fuse_rename_in", Unsafe.SizeOf<FuseRenameIn>(), 8 },
        { "fuse_rename2_in", Unsafe.SizeOf<FuseRename2In>(), 16 },
        { "fuse_link_in", Unsafe.SizeOf<FuseLinkIn>(), 8 },
        { "fuse_setattr_in", Unsafe.SizeOf<FuseSetAttrIn>(), 88 },
        { "fuse_open_in", Unsafe.SizeOf<FuseOpenIn>(), 8 },
        { "fuse_create_in", Unsafe.SizeOf<FuseCreateIn>(), 16 },
        { "fuse_open_out", Unsafe.SizeOf<FuseOpenOut>(), 16 },
        { "fuse_release_in", Unsafe.SizeOf<FuseReleaseIn>(), 24 },
        { "fuse_flush_in", Unsafe.SizeOf<FuseFlushIn>(), 24 },
        { "fuse_read_in", Unsafe.SizeOf<FuseReadIn>(), 40 },
        { "fuse_write_in", Unsafe.SizeOf<FuseWriteIn>(), 40 },
        { "fuse_write_out", Unsafe.SizeOf<FuseWriteOut>(), 8 },
        { "fuse_statfs_out", Unsafe.SizeOf<FuseStatFsOut>(), 80 },
        { "fuse_fsync_in", Unsafe.SizeOf<FuseFsyncIn>(), 16 },
        { "fuse_setxattr_in", Unsafe.SizeOf<FuseSetXattrIn>(), 16 },
        { "fuse_getxattr_in", Unsafe.SizeOf<FuseGetXattrIn>(), 8 },
        { "fuse_getxattr_out", Unsafe.SizeOf<FuseGetXattrOut>(), 8 },
        { "fuse_lk_in", Unsafe.SizeOf<FuseLkIn>(), 48 },
        { "fuse_lk_out", Unsafe.SizeOf<FuseLkOut>(), 24 },
        { "fuse_access_in", Unsafe.SizeOf<FuseAccessIn>(), 8 },
        { "fuse_init_in", Unsafe.SizeOf<FuseInitIn>(), 64 },
        { "fuse_init_out", Unsafe.SizeOf<FuseInitOut>(), 64 },
        { "fuse_interrupt_in", Unsafe.SizeOf<FuseInterruptIn>(), 8 },
        { "fuse_fallocate_in", Unsafe.SizeOf<FuseFallocateIn>(), 32 },
        { "fuse_lseek_in", Unsafe.SizeOf<FuseLseekIn>(), 24 },
        { "fuse_lseek_out", Unsafe.SizeOf<FuseLseekOut>(), 8 },
        { "fuse_copy_file_range_in", Unsafe.SizeOf<FuseCopyFileRangeIn>(), 56 },
        { "fuse_dirent (header)", Unsafe.SizeOf<FuseDirentHeader>(), 24 },
        { "fuse_notify_inval_inode_out", Unsafe.SizeOf<FuseNotifyInvalInodeOut>(), 24 },
        { "fuse_notify_inval_entry_out", Unsafe.SizeOf<FuseNotifyInvalEntryOut>(), 16 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Struct_size_matches_kernel_header(string name, int actual, int expected) =>
        Assert.True(actual == expected, $"{name}: {actual} bytes, kernel has {expected}");

    [Fact]
    public void Field_offsets_match_kernel_header()
    {
        Assert.Equal(24, (int)Marshal.OffsetOf<FuseInHeader>(nameof(FuseInHeader.Uid)));
        Assert.Equal(36, (int)Marshal.OffsetOf<FuseInHeader>(nameof(FuseInHeader.TotalExtLen)));
        Assert.Equal(40, (int)Marshal.OffsetOf<FuseEntryOut>(nameof(FuseEntryOut.Attr)));
        Assert.Equal(60, (int)Marshal.OffsetOf<FuseAttrAbi>(nameof(FuseAttrAbi.Mode)));
        Assert.Equal(16, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.MaxBackground)));
        Assert.Equal(20, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.MaxWrite)));
        Assert.Equal(28, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.MaxPages)));
        Assert.Equal(32, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.Flags2)));
        Assert.Equal(16, (int)Marshal.OffsetOf<FuseLkIn>(nameof(FuseLkIn.Lk)));
        Assert.Equal(68, (int)Marshal.OffsetOf<FuseSetAttrIn>(nameof(FuseSetAttrIn.Mode)));
        Assert.Equal(16, (int)Marshal.OffsetOf<FuseNotifyInvalEntryOut>(nameof(FuseNotifyInvalEntryOut.Flags)) + 4);
    }

    [Fact]
    public void Opcodes_match_kernel_numbers()
    {
        Assert.Equal(1u, (uint)FuseOpcode.Lookup);
        Assert.Equal(26u, (uint)FuseOpcode.Init);
        Assert.Equal(36u, (uint)FuseOpcode.Interrupt);
        Assert.Equal(42u, (uint)FuseOpcode.BatchForget);
        Assert.Equal(44u, (uint)FuseOpcode.ReadDirPlus);
        Assert.Equal(45u, (uint)FuseOpcode.Rename2);
        Assert.Equal(47u, (uint)FuseOpcode.CopyFileRange);
        Assert.Equal(1UL << 22, (ulong)FuseInitFlags.MaxPages);
        Assert.Equal(1UL << 18, (ulong)FuseInitFlags.ParallelDirops);
    }
}
