/**
 * `subscribe`: claims on demand, and blocks in between. Each pull runs the
 * claim step (scripts.claim, prefetch messages per queue) on the queues that
 * may have something, and emits the claimed messages as `Message`
 * deliveries. When nothing is claimable it waits in `XREAD BLOCK` on a
 * reserved connection for a new entry in any of the queues' streams or wake
 * streams (delayed sends and nacks write there), for at most the time until
 * the next known due time, and at most `blockTimeout` (claims made by other
 * consumers may expire unseen). Redis ends a BLOCK on its own timer tick
 * only (`hz` 10: up to 100 ms late), so a wait that ends at a due time is
 * ended by our clock: `CLIENT UNBLOCK` of the reserved connection, at once.
 *
 * Why XREAD and not XREADGROUP BLOCK: a blocked XREADGROUP claims entries on
 * the server as they arrive, so a reply lost with its connection (killed,
 * reset, the subscriber interrupted) would leave claims in the pending list
 * with no deadline, held by nobody, forever. XREAD claims nothing; the claim
 * is always the atomic script, whose reply cannot be lost.
 *
 * A lost connection degrades push health; the subscription reserves a new
 * one on the reconnect schedule, reports `Reconnected` and claims every
 * queue again. Deliveries claimed but not emitted when the stream ends are
 * returned at once; the ones emitted are the subscriber's to settle.
 */
import { Durations, MessageNotification, type Messaging, type MessagingError, type QueueName } from "@conveyor/core"
import { Clock, Duration, Effect, Exit, type Schedule, Scope, Stream, SubscriptionRef } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import type { ClaimStep } from "./Claim.ts"
import { fromRedis, isReply } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import type { Tracker } from "./Tracker.ts"

export interface SubscriptionDeps {
  readonly redis: EffectRedis.Redis["Service"]
  readonly keys: Keys
  readonly claim: ClaimStep
  readonly tracker: Tracker
  readonly health: SubscriptionRef.SubscriptionRef<MessageNotification.PushHealth>
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  readonly retryConnection: <A>(effect: Effect.Effect<A, MessagingError.MessagingError>) => Effect.Effect<A, MessagingError.MessagingError>
  readonly blockTimeoutMs: number
  readonly defaultPrefetch: number
}

/** The stream keys an XREAD reply names: a map under RESP3 (node-redis 6's default), pairs under RESP2. */
const repliedKeys = (reply: unknown): Iterable<string> => {
  if (reply instanceof Map) return reply.keys()
  if (Array.isArray(reply)) return reply.map((pair) => String(pair[0]))
  return Object.keys(reply as object)
}

interface Reserved {
  readonly connection: EffectRedis.Connection
  /** Its `CLIENT ID`, for `CLIENT UNBLOCK`. */
  readonly id: string
  readonly scope: Scope.Closeable
}

export const subscribe = (
  deps: SubscriptionDeps,
  queues: ReadonlyArray<QueueName.QueueName>,
  options: Messaging.SubscribeOptions
): Stream.Stream<MessageNotification.MessageNotification, MessagingError.MessagingError> =>
  Stream.unwrap(Effect.gen(function*() {
    const visibilityMs = Math.ceil(Durations.millis(options.visibilityTimeout))
    const prefetch = Math.max(1, Math.floor(options.prefetch ?? deps.defaultPrefetch))
    const unique = [...new Set(queues)]
    // Nothing to wait for: a subscription to no queue delivers nothing, and holds no connection.
    if (unique.length === 0) return Stream.never
    const streamKeys = unique.map((queue) => deps.keys.of(queue).stream)
    const wakeKeys = unique.map((queue) => deps.keys.of(queue).wake)
    const queueOfKey = new Map<string, QueueName.QueueName>()
    unique.forEach((queue, i) => queueOfKey.set(streamKeys[i]!, queue).set(wakeKeys[i]!, queue))
    const streamCursor = new Map<QueueName.QueueName, string>()
    const wakeCursor = new Map<QueueName.QueueName, string>()
    /** Local clock ms at which a queue has something due (a delay, a nack, a deadline). */
    const dueAt = new Map<QueueName.QueueName, number>()
    const pending = new Set<QueueName.QueueName>(unique)
    const held = deps.tracker.open()
    let reserved: Reserved | undefined
    let lost = false

    const dropConnection = Effect.suspend(() => {
      const current = reserved
      reserved = undefined
      return current === undefined ? Effect.void : Scope.close(current.scope, Exit.void)
    })
    yield* Effect.addFinalizer(() => Effect.andThen(dropConnection, deps.tracker.close(held)))

    const reserve = Effect.gen(function*() {
      const scope = yield* Scope.make()
      return yield* Effect.gen(function*() {
        const connection = yield* Scope.provide(deps.redis.reserve, scope)
        const id = yield* connection.send<number>("CLIENT", "ID")
        return { connection, id: String(id), scope }
      }).pipe(Effect.mapError(fromRedis("subscribe")), Effect.onError(() => Scope.close(scope, Exit.void)))
    })

    const connection = Effect.suspend(() => {
      if (reserved !== undefined) return Effect.succeed(reserved)
      return Effect.gen(function*() {
        reserved = yield* Effect.retry(reserve, { schedule: deps.reconnect, while: (error) => error._tag === "ConnectionError" })
        if (lost) {
          lost = false
          yield* SubscriptionRef.set(deps.health, MessageNotification.PushHealth.Reconnected())
        }
        return reserved
      })
    })

    const claimPending = Effect.gen(function*() {
      const batch = [...pending]
      pending.clear()
      // Claimed and tracked in one uninterruptible step: whatever happens next (an interruption,
      // another queue's claim failing), the stream's end returns these deliveries.
      const claimOne = (queue: QueueName.QueueName) =>
        deps.retryConnection(Effect.uninterruptible(Effect.tap(deps.claim(queue, prefetch, visibilityMs), ({ messages }) =>
          Effect.sync(() => {
            for (const message of messages) held.add(message.receipt)
          }))))
      // Read before the claim: the script's `now` comes later, so a due time counted from here is
      // never after the real one, however long the reply took (a slow reply costs one more claim,
      // not lateness).
      const now = yield* Clock.currentTimeMillis
      // One queue woke (the usual case): no fibers to fork for it.
      const claims = batch.length === 1
        ? [yield* claimOne(batch[0]!)]
        : yield* Effect.forEach(batch, claimOne, { concurrency: "unbounded" })
      const out: Array<MessageNotification.MessageNotification> = []
      claims.forEach(({ messages, reply }, i) => {
        const queue = batch[i]!
        streamCursor.set(queue, reply.lastStreamId)
        wakeCursor.set(queue, reply.lastWakeId)
        if (reply.nextDue < 0) dueAt.delete(queue)
        else dueAt.set(queue, now + Math.max(0, reply.nextDue - reply.now))
        // A full batch: probably more waiting, claim again before blocking.
        if (messages.length === prefetch) pending.add(queue)
        // Emitted now: the subscriber's from here on, not returned when the stream ends.
        for (const message of messages) {
          held.emitted(message.receipt)
          out.push(MessageNotification.Message({ message }))
        }
      })
      return out
    })

    const markDue = (now: number) => {
      for (const [queue, at] of dueAt) if (at <= now) pending.add(queue)
    }

    const block = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let waitMs = deps.blockTimeoutMs
      for (const at of dueAt.values()) waitMs = Math.min(waitMs, at - now)
      if (waitMs <= 0) return markDue(now)
      const { connection: conn, id } = yield* connection
      const cursors = [...unique.map((queue) => streamCursor.get(queue) ?? "$"), ...unique.map((queue) => wakeCursor.get(queue) ?? "$")]
      const read = conn.send<unknown>(
        "XREAD",
        "COUNT",
        "1",
        "BLOCK",
        String(Math.ceil(waitMs)),
        "STREAMS",
        ...streamKeys,
        ...wakeKeys,
        ...cursors
      )
      // A due time ends the wait on our clock, not on Redis's next timer tick.
      const unblockWhenDue = Effect.sleep(Duration.millis(waitMs)).pipe(
        Effect.andThen(deps.redis.send("CLIENT", "UNBLOCK", id)),
        Effect.ignore,
        Effect.andThen(Effect.never)
      )
      const reply = yield* Effect.result(waitMs < deps.blockTimeoutMs ? Effect.raceFirst(read, unblockWhenDue) : read)
      if (reply._tag === "Failure") {
        yield* dropConnection
        if (isReply(reply.failure)) return yield* Effect.fail(fromRedis("subscribe")(reply.failure))
        if (!lost) {
          lost = true
          yield* SubscriptionRef.set(deps.health, MessageNotification.PushHealth.Degraded({ reason: fromRedis("subscribe")(reply.failure).message }))
        }
        // Whatever arrived during the gap: claim every queue once reconnected.
        for (const queue of unique) pending.add(queue)
        return
      }
      if (reply.success === null) {
        for (const queue of unique) pending.add(queue)
        return
      }
      for (const key of repliedKeys(reply.success)) {
        const queue = queueOfKey.get(key)
        if (queue !== undefined) pending.add(queue)
      }
      markDue(yield* Clock.currentTimeMillis)
    })

    const pull = Effect.gen(function*() {
      while (true) {
        if (pending.size > 0) {
          const out = yield* claimPending
          if (out.length > 0) return out as unknown as readonly [MessageNotification.MessageNotification, ...Array<MessageNotification.MessageNotification>]
          if (pending.size > 0) continue
        }
        yield* block
      }
    })
    return Stream.fromPull(Effect.succeed(pull))
  }))
