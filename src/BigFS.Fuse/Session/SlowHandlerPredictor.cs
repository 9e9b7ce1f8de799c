using System.Diagnostics;

namespace BigFS.Fuse.Session;

/// <summary>
/// Guesses, per opcode, whether the synchronous part of the next request's handling (handler plus
/// reply) will be slow, so the leader can hand off before it rather than after (a 1 MiB READ
/// answered from memory keeps a reader busy for a few hundred µs; two parallel readers need two
/// threads). A two-bit saturating counter per opcode: two slow runs in a row predict slow, two fast
/// ones fast, so one preemption does not flip it.
/// </summary>
/// <remarks>Updated from several threads without synchronization: a lost update only costs one
/// wrong guess, which the hand-off and the watchdog tolerate.</remarks>
internal sealed class SlowHandlerPredictor(TimeSpan threshold)
{
    private const int Slots = 64; // FUSE opcodes are below 64 (CUSE_INIT, 4096, shares slot 0)
    private readonly byte[] _counters = new byte[Slots];
    private readonly long _thresholdTicks = Math.Max(1, (long)(threshold.TotalSeconds * Stopwatch.Frequency));

    public TimeSpan Threshold => threshold;

    public bool ExpectSlow(uint opcode) => _counters[Slot(opcode)] >= 2;

    /// <summary>Records how long the synchronous part of one request took (Stopwatch ticks).</summary>
    public void Record(uint opcode, long elapsedTicks)
    {
        ref byte c = ref _counters[Slot(opcode)];
        if (elapsedTicks >= _thresholdTicks) { if (c < 3) c++; }
        else if (c > 0) c--;
    }

    private static int Slot(uint opcode) => opcode < Slots ? (int)opcode : 0;
}
