/**
 * Sending. A plain send is one `XADD NOMKSTREAM`; a batch is one script
 * call. A delayed send gets its message ids here (UUIDs), since its entries
 * are added to the stream only when due.
 */
import { Durations, type Message, type Messaging, type MessagingError, Payload, QueueName } from "@conveyor/core"
import { Effect, Result } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { encodeHeaders } from "./Codec.ts"
import { fromRedis, queueNotFound } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./scripts.ts"

interface Outgoing {
  readonly queue: QueueName.QueueName
  readonly text: string
  readonly headers: string
}

export const make = (
  redis: EffectRedis.Redis["Service"],
  keys: Keys,
  maxBytes: number,
  retryConnection: <A>(effect: Effect.Effect<A, MessagingError.MessagingError>) => Effect.Effect<A, MessagingError.MessagingError>
) =>
  Effect.gen(function*() {
    // One XADD each, not coalesced: node-redis writes the commands of one turn together anyway,
    // and a lone send then takes no request, no fiber of a batch and no script (W1).
    // NOMKSTREAM: a deleted queue's stream is not made again, the send is refused.
    // The reply is read in one step, whichever way it went (it runs for every message of a workflow).
    const sendNow = ({ headers, queue, text }: Outgoing) =>
      Effect.matchEffect(
        headers === ""
          ? redis.send<string | null>("XADD", keys.of(queue).stream, "NOMKSTREAM", "*", "p", text)
          : redis.send<string | null>("XADD", keys.of(queue).stream, "NOMKSTREAM", "*", "p", text, "h", headers),
        {
          onFailure: (error) => Effect.fail(fromRedis("send", queue)(error)),
          onSuccess: (id) => id === null ? Effect.fail(queueNotFound(queue)) : Effect.succeed(id as Message.MessageId)
        }
      )

    const sendDelayed = (queue: QueueName.QueueName, texts: ReadonlyArray<string>, headers: string, delayMs: number) => {
      const ids = texts.map(() => crypto.randomUUID())
      const idsAndPayloads = texts.flatMap((text, i) => [ids[i]!, text])
      return retryConnection(
        redis.eval(Scripts.sendDelayed)(keys.of(queue), Math.ceil(delayMs), headers, idsAndPayloads).pipe(
          Effect.mapError(fromRedis("send", queue)),
          Effect.flatMap((done) => done === 1 ? Effect.succeed(ids) : Effect.fail(queueNotFound(queue)))
        )
      )
    }

    // Not a generator: it runs for every message of a workflow.
    const invalidName = QueueName.checker()
    const send = (name: QueueName.QueueName, payload: Message.Json, opts?: Messaging.SendOptions) =>
      Effect.suspend((): Effect.Effect<Message.MessageId, MessagingError.MessagingError> => {
        const invalid = invalidName(name)
        if (invalid !== undefined) return Effect.fail(invalid)
        const queue = name
        const encoded = Payload.encodeResult(queue, payload, maxBytes)
        if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
        const text = encoded.success
        const headers = encodeHeaders(opts?.headers)
        const delayMs = Durations.millis(opts?.delay)
        return delayMs > 0
          ? Effect.map(sendDelayed(queue, [text], headers, delayMs), (ids) => ids[0]!)
          : retryConnection(sendNow({ queue, text, headers }))
      })

    const sendBatch = Effect.fnUntraced(function*(
      name: QueueName.QueueName,
      payloads: ReadonlyArray<Message.Json>,
      opts?: Messaging.SendOptions
    ) {
      const queue = yield* QueueName.make(name)
      const texts = yield* Effect.forEach(payloads, (payload) => Payload.encode(queue, payload, maxBytes))
      if (texts.length === 0) return []
      const headers = encodeHeaders(opts?.headers)
      const delayMs = Durations.millis(opts?.delay)
      if (delayMs > 0) return yield* sendDelayed(queue, texts, headers, delayMs)
      const ids = yield* retryConnection(
        redis.eval(Scripts.send)(keys.of(queue), texts.flatMap((text) => [text, headers])).pipe(Effect.mapError(fromRedis("send", queue)))
      )
      if (ids === null) return yield* Effect.fail(queueNotFound(queue))
      return ids
    })

    return { send, sendBatch }
  })
