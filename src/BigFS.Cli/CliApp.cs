using System.Reflection;
using BigFS.Cli.Commands;

namespace BigFS.Cli;

/// <summary>The `bigfs` command: one executable, a subcommand per daemon or admin task.</summary>
public static class CliApp
{
    private static readonly Dictionary<string, (string Summary, Func<string[], CancellationToken, Task<int>> Run)> Commands = new()
    {
        ["meta"] = ("run the metadata server", MetaCommand.RunAsync),
        ["node"] = ("run a storage node; `node remove ID` forgets one gone for good", NodeCommand.RunAsync),
        ["mount"] = ("mount a BigFS cluster with FUSE", MountCommand.RunAsync),
        ["up"] = ("run a local cluster: a metadata server and three storage nodes (and a mount)", UpCommand.RunAsync),
        ["status"] = ("show nodes, capacity and chunk copy states", StatusCommand.RunAsync),
        ["ls"] = ("list a directory", FileCommands.LsAsync),
        ["stat"] = ("show a file's attributes and each chunk's copies", FileCommands.StatAsync),
        ["put"] = ("copy a local file into BigFS", FileCommands.PutAsync),
        ["get"] = ("copy a file out of BigFS", FileCommands.GetAsync),
        ["rm"] = ("remove a file or an empty directory", FileCommands.RmAsync),
        ["mkdir"] = ("create a directory", FileCommands.MkdirAsync),
    };

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintUsage();
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] is "--version" or "version")
        {
            Console.WriteLine($"bigfs {Version}");
            return 0;
        }
        if (!Commands.TryGetValue(args[0], out var command))
        {
            Console.Error.WriteLine($"bigfs: unknown command '{args[0]}' (see bigfs --help)");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGINT, ctx => { ctx.Cancel = true; cancel.Cancel(); });
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cancel.Cancel(); });
        try
        {
            return await command.Run(args[1..], cancel.Token);
        }
        catch (CliUsageException e)
        {
            Console.Error.WriteLine($"bigfs {args[0]}: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            return 130;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BigFS.Client.BigFsException or InvalidOperationException)
        {
            // Expected failures (port in use, data dir locked or unwritable, cluster unreachable): one line, no stack trace.
            Console.Error.WriteLine($"bigfs {args[0]}: {e.Message.Split('\n')[0].Trim()}");
            return 1;
        }
    }

    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static void PrintUsage()
    {
        Console.WriteLine($"bigfs {Version} — a distributed filesystem");
        Console.WriteLine();
        Console.WriteLine("usage: bigfs COMMAND [options]");
        Console.WriteLine();
        foreach (var (name, (summary, _)) in Commands)
            Console.WriteLine($"  {name,-8} {summary}");
        Console.WriteLine();
        Console.WriteLine("Admin and file commands talk to --meta ADDR (default $BIGFS_META or 127.0.0.1:9000).");
    }
}

/// <summary>A mistake in how the command was called: printed as one line, exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);
