using LiteDB;

namespace BigFS.Metadata.Model;

/// <summary>
/// The reply cache's entry for one (session, slot): the last sequence number run there and its
/// reply (the protobuf bytes). Written with the change it answers, in the same journal group,
/// so a change and the proof that it ran survive a crash together or not at all.
/// </summary>
public sealed class ReplyRecord
{
    public string Id { get; set; } = "";
    public string Session { get; set; } = "";
    public long Slot { get; set; }
    public long Seq { get; set; }
    public byte[] Reply { get; set; } = [];
    /// <summary>When the call ran (server clock, Unix ms).</summary>
    public long TimeMs { get; set; }

    /// <summary>
    /// Set when this server process ran the call; false for an entry loaded at start. What the
    /// call did to memory-only state (a session's opens) is then lost, and a repeat redoes it.
    /// </summary>
    [BsonIgnore]
    public bool RanInThisProcess { get; set; }

    public static string KeyOf(string session, long slot) => session + "/" + slot;

    /// <summary>The copy handed to the store: a process that loads it did not run the call.</summary>
    public ReplyRecord Clone()
    {
        var copy = (ReplyRecord)MemberwiseClone();
        copy.RanInThisProcess = false;
        return copy;
    }
}
