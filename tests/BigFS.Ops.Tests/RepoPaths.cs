namespace BigFS.Ops.Tests;

/// <summary>Where the repository's ops files and the built bigfs are, seen from the test output folder.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string SystemdDirectory => Path.Combine(Root, "systemd");
    public static string PackagingDirectory => Path.Combine(Root, "packaging");

    /// <summary>The bigfs apphost built next to the tests (framework-dependent; the package holds the self-contained one).</summary>
    public static string BigfsExecutable => Path.Combine(AppContext.BaseDirectory, "bigfs");

    public static IEnumerable<string> UnitFiles => Directory.GetFiles(SystemdDirectory, "*.service").Order();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")) && Directory.Exists(Path.Combine(dir.FullName, "systemd")))
                return dir.FullName;
        throw new InvalidOperationException($"repository root not found above {AppContext.BaseDirectory}");
    }
}
