namespace BigFS.Metadata.Logic;

/// <summary>
/// The session on whose behalf the current call changes metadata (from the call's
/// <see cref="HeaderName"/> header), so that the change feed does not echo a mount's own changes.
/// </summary>
public static class ChangeOrigin
{
    public const string HeaderName = BigFS.Protocol.SessionHeader.Name;

    private static readonly AsyncLocal<string?> Current = new();

    public static string? Session
    {
        get => Current.Value;
        set => Current.Value = value;
    }
}
