/**
 * Sending. Concurrent plain sends to a queue coalesce (core's `Batching`)
 * into one script call; a batch is one call of its own. A delayed send gets
 * its message ids here (UUIDs), since its entries are added to the stream
 * only when due.
 */
import { Batching, Durations, type Message, type Messaging, type MessagingError, Payload, QueueName } from "@conveyor/core"
import { Effect, Exit } from "effect"
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
    /** Concurrent plain sends to a queue go out as one script call. */
    const sendNow = yield* Batching.make<Outgoing, Message.MessageId, MessagingError.MessagingError>({
      key: (outgoing) => `send:${outgoing.queue}`,
      run: (items) => {
        const queue = items[0].queue
        return redis.eval(Scripts.send)(keys.of(queue), items.flatMap((item) => [item.text, item.headers])).pipe(
          Effect.mapError(fromRedis("send", queue)),
          Effect.map((ids) => ids === null ? items.map(() => Exit.fail(queueNotFound(queue))) : ids.map(Exit.succeed))
        )
      }
    })

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

    const send = Effect.fnUntraced(function*(name: QueueName.QueueName, payload: Message.Json, opts?: Messaging.SendOptions) {
      const queue = yield* QueueName.make(name)
      const text = yield* Payload.encode(queue, payload, maxBytes)
      const headers = encodeHeaders(opts?.headers)
      const delayMs = Durations.millis(opts?.delay)
      if (delayMs > 0) return (yield* sendDelayed(queue, [text], headers, delayMs))[0]!
      return yield* retryConnection(sendNow({ queue, text, headers }))
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
