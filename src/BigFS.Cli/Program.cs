using BigFS.Cli;

return await CliApp.RunAsync(args);
