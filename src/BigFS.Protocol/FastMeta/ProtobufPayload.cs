using System.Buffers;
using Google.Protobuf;
using Grpc.Core;

namespace BigFS.Protocol.FastMeta;

/// <summary>A received protobuf payload as the gRPC marshallers read it (no copy: the generated parsers read the sequence).</summary>
internal sealed class ProtobufPayload(ReadOnlyMemory<byte> payload) : DeserializationContext
{
    public override int PayloadLength => payload.Length;
    public override byte[] PayloadAsNewBuffer() => payload.ToArray();
    public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(payload);

    public static T Parse<T>(Marshaller<T> marshaller, ReadOnlyMemory<byte> payload) =>
        marshaller.ContextualDeserializer(new ProtobufPayload(payload));

    /// <summary>Every BigFS wire message is a generated protobuf message.</summary>
    public static IMessage AsMessage<T>(T value) =>
        value as IMessage ?? throw new InvalidOperationException($"{typeof(T).Name} is not a protobuf message");
}
