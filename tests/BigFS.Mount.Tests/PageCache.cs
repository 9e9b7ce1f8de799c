using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>
/// The kernel's page cache of a file, seen from outside. The machine may drop cached pages at any
/// time: other test classes write /proc/sys/vm/drop_caches, and on these VMs DAMON's proactive
/// reclaim (kdamond, "pageout" of regions it judges cold) evicts pages now and then. A test that
/// counts resident pages must allow for that, never read a shortfall as the mount's doing at once.
/// </summary>
internal static class PageCache
{
    /// <summary>Bytes of the file in the page cache (fincore: mincore(2) on a mapping; reads nothing).</summary>
    public static async Task<long> ResidentBytesAsync(string path) =>
        long.Parse((await RunAsync($"fincore --bytes --noheadings --output RES {Quote(path)}")).Trim());

    /// <summary>How often the whole page cache was dropped on this machine (/proc/vmstat drop_pagecache).</summary>
    public static long Drops() =>
        long.Parse(File.ReadLines("/proc/vmstat").First(l => l.StartsWith("drop_pagecache ", StringComparison.Ordinal)).Split(' ')[1]);
}
