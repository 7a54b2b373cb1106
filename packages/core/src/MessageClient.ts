/**
 * Typed queues: a Schema per queue. `send` encodes before anything leaves the
 * process; consumption decodes, and a payload that does not decode is a
 * `DecodeError`, which `Consumer.run` dead-letters at once instead of
 * retrying it forever.
 */
import { Effect, Schema, Stream } from "effect"
import * as Consumer from "./Consumer.ts"
import type { Json, MessageId, QueuedMessage } from "./Message.ts"
import { Messaging, type SendOptions } from "./Messaging.ts"
import { DecodeError, InvalidPayload, type MessagingError } from "./MessagingError.ts"
import type { QueueName } from "./QueueName.ts"

export interface MessageClient<A> {
  readonly queue: QueueName
  readonly send: (value: A, options?: SendOptions) => Effect.Effect<MessageId, MessagingError, Messaging>
  readonly sendBatch: (
    values: ReadonlyArray<A>,
    options?: SendOptions
  ) => Effect.Effect<ReadonlyArray<MessageId>, MessagingError, Messaging>
  readonly decode: (message: QueuedMessage) => Effect.Effect<A, DecodeError>
  /** `Consumer.run` with decoded values; undecodable messages are dead-lettered, never retried. */
  readonly run: <E, R>(
    handler: (value: A, message: QueuedMessage) => Effect.Effect<void, E, R>,
    options?: Consumer.RunOptions
  ) => Effect.Effect<void, MessagingError, Messaging | R>
  /** `Consumer.stream` with decoded values; fails with the first `DecodeError`. */
  readonly stream: (
    options?: Consumer.StreamOptions
  ) => Stream.Stream<readonly [A, QueuedMessage], MessagingError, Messaging>
}

export const make = <A, I extends Json>(
  queue: QueueName,
  schema: Schema.Codec<A, I>
): MessageClient<A> => {
  const encodeValue = Schema.encodeEffect(schema)
  const decodeValue = Schema.decodeUnknownEffect(schema)
  const encode = (value: A) =>
    encodeValue(value).pipe(
      Effect.mapError((error) =>
        new InvalidPayload({ path: "$", message: `Payload for queue ${queue} does not match its schema: ${error.message}` })
      )
    )
  const decode = (message: QueuedMessage) =>
    decodeValue(message.payload).pipe(
      Effect.mapError((error) =>
        new DecodeError({
          queue,
          messageId: message.id,
          message: `Message ${message.id} on ${queue} does not match its schema: ${error.message}`
        })
      )
    )
  return {
    queue,
    send: (value, options) =>
      Effect.flatMap(encode(value), (json) => Messaging.use((m) => m.send(queue, json, options))),
    sendBatch: (values, options) =>
      Effect.flatMap(
        Effect.forEach(values, encode),
        (json) => Messaging.use((m) => m.sendBatch(queue, json, options))
      ),
    decode,
    run: (handler, options) =>
      Consumer.run([queue], (message) => Effect.flatMap(decode(message), (value) => handler(value, message)), options),
    stream: (options) =>
      Consumer.stream([queue], options).pipe(
        Stream.mapEffect((message) => Effect.map(decode(message), (value) => [value, message] as const))
      )
  }
}
