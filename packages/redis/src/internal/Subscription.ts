/**
 * `subscribe`: a blocking `XREADGROUP` on a reserved connection, which claims
 * as it reads, so a message sent to an idle subscription reaches it in one
 * round trip. The read covers the queues' streams and their wake streams
 * (delayed sends and nacks write there), up to `prefetch` entries per queue,
 * for at most the time until the next known due time, and at most
 * `blockTimeout`. Entries read are emitted at once, and their deadlines are
 * registered by one script call per queue sent right after the read, by the
 * layer's registrar (claimScripts.register: deferred registration; a settle
 * that overtakes it finds the claim live). A read reply lost with its connection leaves entries
 * pending without a deadline: the claim step's janitor gives them one within
 * a few seconds (claimScripts.claim), so nothing is stranded.
 *
 * The claim step (claimScripts.claim) runs per queue at start, after a reconnect,
 * on a wake signal, at a due time (a delay, a nack, a deadline it set), and
 * at least every `blockTimeout` even while reads keep returning (claims made
 * by other consumers may expire unseen). Redis ends a BLOCK on its own timer
 * tick only (`hz` 10: up to 100 ms late), so a wait that ends at a due time is
 * ended by our clock: `CLIENT UNBLOCK` of the reserved connection, at once.
 * Ending the subscription while it blocks unblocks the read and waits for its
 * reply, so what it read goes back at once instead of waiting for the janitor.
 *
 * A lost connection degrades push health; the subscription reserves a new
 * one on the reconnect schedule, reports `Reconnected` and claims every
 * queue again. Deliveries claimed but not emitted when the stream ends are
 * returned at once; the ones emitted are the subscriber's to settle.
 */
import { Durations, type Message, MessageNotification, type Messaging, type MessagingError, type QueueName } from "@conveyor/core"
import { Array as Arr, Clock, Duration, Effect, Exit, Fiber, type Schedule, Scope, Stream, SubscriptionRef } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import type { Claims } from "./Claim.ts"
import { type Claimed, streamsOf } from "./Codec.ts"
import { fromRedis, isReply } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import type { Registrar } from "./Registrar.ts"
import type { Tracker } from "./Tracker.ts"

export interface SubscriptionDeps {
  readonly redis: EffectRedis.Redis["Service"]
  readonly keys: Keys
  readonly group: string
  readonly consumer: string
  readonly claims: Claims
  readonly tracker: Tracker
  readonly registrar: Registrar
  readonly health: SubscriptionRef.SubscriptionRef<MessageNotification.PushHealth>
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  readonly retryConnection: <A>(effect: Effect.Effect<A, MessagingError.MessagingError>) => Effect.Effect<A, MessagingError.MessagingError>
  readonly blockTimeoutMs: number
  readonly defaultPrefetch: number
}

interface Reserved {
  readonly connection: EffectRedis.Connection
  /** Its `CLIENT ID`, for `CLIENT UNBLOCK`. */
  readonly id: string
  readonly scope: Scope.Closeable
}

type Messages = ReadonlyArray<Message.QueuedMessage>

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
    const readArgs = ["STREAMS", ...streamKeys, ...wakeKeys, ...unique.flatMap(() => [">", ">"])]
    const ofStream = new Map(unique.map((queue, i) => [streamKeys[i]!, queue]))
    const ofWake = new Map(unique.map((queue, i) => [wakeKeys[i]!, queue]))
    /** Local clock ms at which a queue has something due (a delay, a nack, a deadline). */
    const dueAt = new Map<QueueName.QueueName, number>()
    /** Local clock ms of each queue's last claim step. */
    const claimedAt = new Map<QueueName.QueueName, number>()
    const pending = new Set<QueueName.QueueName>(unique)
    /** Queues whose next claim step creates the group on their wake stream (at start, after NOGROUP). */
    const ensureWake = new Set<QueueName.QueueName>(unique)
    const held = deps.tracker.open()
    const clock = yield* Effect.clockWith(Effect.succeed)
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
        deps.retryConnection(Effect.uninterruptible(
          Effect.tap(deps.claims.step(queue, prefetch, visibilityMs, ensureWake.has(queue)), ({ messages }) =>
            Effect.sync(() => {
              ensureWake.delete(queue)
              for (const message of messages) held.add(message.receipt)
            }))
        ))
      // Read before the claim: the script's `now` comes later, so a due time counted from here is
      // never after the real one, however long the reply took (a slow reply costs one more claim,
      // not lateness).
      const now = yield* Clock.currentTimeMillis
      // One queue woke (the usual case): no fibers to fork for it.
      const claims = batch.length === 1
        ? [yield* claimOne(batch[0]!)]
        : yield* Effect.forEach(batch, claimOne, { concurrency: "unbounded" })
      const out: Array<Message.QueuedMessage> = []
      claims.forEach(({ messages, reply }, i) => {
        const queue = batch[i]!
        claimedAt.set(queue, now)
        if (reply.nextDue < 0) dueAt.delete(queue)
        else dueAt.set(queue, now + Math.max(0, reply.nextDue - reply.now))
        // Emitted now: the subscriber's from here on, not returned when the stream ends.
        for (const message of messages) {
          held.emitted(message.receipt)
          out.push(message)
        }
      })
      return out
    })

    /**
     * Marks the queues whose due time or periodic claim step has come; returns how long the read
     * may wait, and whether a due time comes within it (the wait is then ended on our clock).
     */
    const markDue = (now: number) => {
      let waitMs = deps.blockTimeoutMs
      let byDueTime = false
      for (const queue of unique) {
        const at = dueAt.get(queue)
        const stale = (claimedAt.get(queue) ?? now) + deps.blockTimeoutMs
        if ((at !== undefined && at <= now) || stale <= now) pending.add(queue)
        if (at !== undefined && at - now < deps.blockTimeoutMs) byDueTime = true
        waitMs = Math.min(waitMs, stale - now, at === undefined ? waitMs : at - now)
      }
      return { waitMs, byDueTime }
    }

    /**
     * What one read returned: the entries of each queue are registered (one call per queue, not
     * awaited) and decoded; a wake signal makes the queue's next step a claim step (which
     * acknowledges the signal).
     */
    const took = (reply: unknown, readAt: number): Effect.Effect<Messages> => {
      const out: Array<Message.QueuedMessage> = []
      let deadLetters: Effect.Effect<void> | undefined
      const visibleUntil = new Date(readAt + visibilityMs)
      for (const [key, entries] of streamsOf(reply)) {
        const woken = ofWake.get(key)
        if (woken !== undefined) pending.add(woken)
        const queue = ofStream.get(key)
        if (queue === undefined || entries.length === 0) continue
        const claimed = entries.map(([entry, fields]): Claimed => ({ entry, count: 1, fields: fields ?? [] }))
        // Sent from the registrar's next turn: the entries reach the subscriber before its write.
        deps.registrar.register({ queue, visibilityMs, entries: claimed.map((c) => c.entry) })
        const { foreign, messages } = deps.claims.toMessages(queue, claimed, visibleUntil)
        out.push(...messages)
        if (foreign.length > 0) deadLetters = Effect.andThen(deadLetters ?? Effect.void, deps.claims.deadLetterForeign(queue, foreign))
      }
      return deadLetters === undefined ? Effect.succeed(out) : Effect.as(deadLetters, out)
    }

    /** A failed read: the connection is dropped; a lost one degrades push health, every queue is claimed again. */
    const failed = (error: EffectRedis.RedisError) =>
      Effect.gen(function*() {
        yield* dropConnection
        for (const queue of unique) pending.add(queue)
        if (isReply(error)) {
          // A stream or group went away under the read (UNBLOCKED, NOGROUP): the claim step reports a
          // deleted queue, and recreates a wake stream's group.
          if (/NOGROUP|UNBLOCKED/.test(String(error.cause))) return unique.forEach((queue) => ensureWake.add(queue))
          return yield* Effect.fail(fromRedis("subscribe")(error))
        }
        if (!lost) {
          lost = true
          yield* SubscriptionRef.set(deps.health, MessageNotification.PushHealth.Degraded({ reason: fromRedis("subscribe")(error).message }))
        }
      })

    /** Ended while blocked: the read is unblocked and its reply taken, so the stream's end returns what it read at once. */
    const takeBack = (fiber: Fiber.Fiber<unknown, EffectRedis.RedisError>, unblock: Effect.Effect<void>) =>
      Effect.andThen(unblock, Fiber.join(fiber)).pipe(
        Effect.timeout("2 seconds"),
        Effect.flatMap((reply) => reply === null ? Effect.succeed([]) : Effect.flatMap(Clock.currentTimeMillis, (now) => took(reply, now))),
        Effect.flatMap((messages) => Effect.sync(() => messages.forEach((message) => held.add(message.receipt)))),
        Effect.ignore
      )

    // No generator step from here to the emission: it is on the way from a send to its handler,
    // and on every read of a drain (W1, W3).
    const read = Effect.suspend((): Effect.Effect<Messages, MessagingError.MessagingError> => {
      // Issued at once, not after a scheduler round: node-redis writes a command in a
      // `setImmediate` after the turn that sent it, so the handlers of what was just emitted
      // still start before this read's write, and the read is on the wire a round sooner
      // (W2@16: +3–10% msg/s in paired bench runs).
      const { byDueTime, waitMs } = markDue(clock.currentTimeMillisUnsafe())
      if (pending.size > 0) return Effect.succeed([])
      return Effect.flatMap(connection, ({ connection: conn, id }) => {
        const unblock = Effect.ignore(deps.redis.send("CLIENT", "UNBLOCK", id))
        const block = String(Math.max(1, Math.ceil(waitMs)))
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            Effect.forkDetach(
              conn.send<unknown>("XREADGROUP", "GROUP", deps.group, deps.consumer, "COUNT", String(prefetch), "BLOCK", block, ...readArgs),
              { startImmediately: true }
            ),
            (fiber) => {
              // A due time ends the wait on our clock, not on Redis's next timer tick.
              const reply = byDueTime
                ? Effect.raceFirst(Fiber.join(fiber), Effect.sleep(Duration.millis(waitMs)).pipe(Effect.andThen(unblock), Effect.andThen(Effect.never)))
                : Fiber.join(fiber)
              return Effect.matchEffect(restore(reply).pipe(Effect.onInterrupt(() => takeBack(fiber, unblock))), {
                onFailure: (error) => Effect.as(failed(error), []),
                onSuccess: (result) => result === null ? Effect.succeed([]) : took(result, clock.currentTimeMillisUnsafe())
              })
            }
          )
        )
      })
    })

    const step = Effect.suspend(() => pending.size > 0 ? claimPending : read)
    const emitted = (out: Messages): Effect.Effect<Arr.NonEmptyReadonlyArray<MessageNotification.MessageNotification>, MessagingError.MessagingError> =>
      Arr.isReadonlyArrayNonEmpty(out)
        ? Effect.succeed(Arr.map(out, (message): MessageNotification.MessageNotification => MessageNotification.Message({ message })))
        : Effect.flatMap(step, emitted)
    const pull = Effect.flatMap(step, emitted)
    return Stream.fromPull(Effect.succeed(pull))
  }))
