/**
 * PGMQ push: listener events become notifications. Every message announced
 * as visible now (inline payload, `message_ready`, the ids of `batch_ready`)
 * is claimed by id before it is handed on, as a delivery; if another
 * consumer won, nothing is delivered. Claims running at once are one
 * statement (see `claims.ts`), so a `batch_ready` of many ids costs one
 * round trip per `prefetch` ids. A delayed message, or the unlisted rest of
 * a batch, becomes `Available` for the consumer to claim when due.
 *
 * A subscription claims at most `prefetch` (default 100) messages ahead of
 * its reader. Its end returns the deliveries it claimed and has not emitted
 * yet; what it emitted is the subscriber's to settle.
 *
 * A subscription fails with `QueueNotFound` once one of its queues is gone:
 * at once when this layer deletes it, and otherwise (another client dropped
 * it; no notification says so) at the next look at `pgmq.meta`, made at the
 * start and every fallback polling interval — as often as a consumer's
 * fallback poll reads the queue anyway.
 */
import { type Message, MessagingError, MessageNotification, type QueueName } from "@conveyor/core"
import { Clock, Deferred, type Duration, Effect, Exit, Option, Schedule, Stream } from "effect"
import type * as PgmqEvent from "../PgmqEvent.ts"

export interface Dependencies {
  readonly events: (queues: ReadonlyArray<QueueName.QueueName>) => Stream.Stream<PgmqEvent.PgmqEvent>
  /** Claims one visible message by id (uninterruptibly: a claim made is never lost track of). */
  readonly claim: (
    queue: QueueName.QueueName,
    id: string,
    visibilityMs: number
  ) => Effect.Effect<Option.Option<Message.QueuedMessage>, MessagingError.MessagingError>
  readonly release: (receipt: Message.Receipt) => Effect.Effect<void, MessagingError.MessagingError>
  /** Which of these queues exist now. */
  readonly existing: (queues: ReadonlyArray<QueueName.QueueName>) => Effect.Effect<ReadonlySet<string>, MessagingError.MessagingError>
  /** How often a subscription looks for its queues being dropped by other clients. */
  readonly checkEvery: Duration.Duration
}

export const defaultPrefetch = 100

type Step =
  | { readonly _tag: "Claim"; readonly queue: QueueName.QueueName; readonly id: string }
  | { readonly _tag: "Announce"; readonly notification: MessageNotification.MessageNotification }

const available = (queue: QueueName.QueueName, id: Option.Option<string>, visibleAt: Option.Option<Date>): Step => ({
  _tag: "Announce",
  notification: MessageNotification.Available({ queue, messageId: id, visibleAt })
})

/** What one event asks for, judged at `now`. */
const stepsOf = (event: PgmqEvent.PgmqEvent, now: number): ReadonlyArray<Step> => {
  if (event._tag === "QueueCreated") return []
  const queue = event.queueName as QueueName.QueueName
  const due = event.readyAt.getTime() <= now
  const later = due ? Option.none() : Option.some(event.readyAt)
  const each = (id: string): Step => due ? { _tag: "Claim", queue, id } : available(queue, Option.some(id), later)
  switch (event._tag) {
    case "MessageWithPayload":
    case "MessageReady":
      return [each(event.msgId)]
    case "BatchReady": {
      const listed = event.msgIds.map(each)
      return event.messageCount > event.msgIds.length ? [...listed, available(queue, Option.none(), later)] : listed
    }
  }
}

export const make = (dependencies: Dependencies) => {
  /** Deliveries claimed by live subscriptions and not yet emitted, one set per subscription. */
  const live = new Set<Set<Message.Receipt>>()

  /** Live subscriptions by queue, each ended (failed) when this layer deletes one of its queues. */
  const readers = new Map<QueueName.QueueName, Set<Deferred.Deferred<never, MessagingError.QueueNotFound>>>()
  const notFound = (queue: QueueName.QueueName) =>
    new MessagingError.QueueNotFound({ queue, message: `Queue ${queue} does not exist` })

  /** Called once this layer has deleted `queue`. */
  const deleted = (queue: QueueName.QueueName) =>
    Effect.sync(() => {
      for (const gone of readers.get(queue) ?? []) Deferred.doneUnsafe(gone, Exit.fail(notFound(queue)))
    })

  /** Fails when one of `queues` is gone; a look that could not be made (no connection) proves nothing. */
  const untilGone = (queues: ReadonlyArray<QueueName.QueueName>) =>
    Effect.gen(function*() {
      const gone = Deferred.makeUnsafe<never, MessagingError.QueueNotFound>()
      yield* Effect.acquireRelease(
        Effect.sync(() => queues.forEach((queue) => readers.set(queue, (readers.get(queue) ?? new Set()).add(gone)))),
        () =>
          Effect.sync(() =>
            queues.forEach((queue) => {
              const waiting = readers.get(queue)
              waiting?.delete(gone)
              if (waiting?.size === 0) readers.delete(queue)
            })
          )
      )
      const look = dependencies.existing(queues).pipe(
        Effect.flatMap((found) => {
          const missing = queues.find((queue) => !found.has(queue))
          return missing === undefined ? Effect.void : Deferred.fail(gone, notFound(missing))
        }),
        Effect.ignore
      )
      if (queues.length > 0) yield* Effect.forkScoped(Effect.repeat(look, Schedule.spaced(dependencies.checkEvery)))
      return Deferred.await(gone)
    })

  /** Called once a delivery is settled: its subscription no longer returns it. */
  const forget = (receipt: Message.Receipt) =>
    Effect.sync(() => {
      for (const held of live) held.delete(receipt)
    })

  const take = (step: Step, visibilityMs: number): Effect.Effect<ReadonlyArray<MessageNotification.MessageNotification>> =>
    step._tag === "Announce"
      ? Effect.succeed([step.notification])
      : dependencies.claim(step.queue, step.id, visibilityMs).pipe(
        Effect.map(Option.match({
          onNone: () => [],
          onSome: (message) => [MessageNotification.Message({ message })]
        })),
        // A claim that failed still announces the message: the consumer claims it later.
        Effect.catch(() =>
          Effect.succeed([MessageNotification.Available({ queue: step.queue, messageId: Option.some(step.id), visibleAt: Option.none() })])
        )
      )

  const subscribe = (queues: ReadonlyArray<QueueName.QueueName>, visibilityMs: number, prefetch = defaultPrefetch) =>
    Stream.unwrap(Effect.gen(function*() {
      const held = new Set<Message.Receipt>()
      yield* Effect.acquireRelease(
        Effect.sync(() => live.add(held)),
        () =>
          Effect.suspend(() => {
            live.delete(held)
            const receipts = [...held]
            held.clear()
            return Effect.forEach(receipts, (receipt) => Effect.ignore(dependencies.release(receipt)), {
              concurrency: "unbounded",
              discard: true
            })
          })
      )
      const gone = yield* untilGone(queues)
      // On the events, before any claim: a merge buffers, and a delivery must never wait in a
      // buffer after it counts as emitted (it would be lost to the stream's end).
      return dependencies.events(queues).pipe(
        Stream.interruptWhen(gone),
        Stream.mapEffect((event) => Effect.map(Clock.currentTimeMillis, (now) => stepsOf(event, now))),
        Stream.flattenIterable,
        Stream.mapEffect(
          (step) =>
            // A claim that reached the database is recorded, even if the stream is being interrupted.
            Effect.uninterruptible(Effect.tap(take(step, visibilityMs), (notifications) =>
              Effect.sync(() => {
                for (const n of notifications) if (n._tag === "Message") held.add(n.message.receipt)
              }))),
          { concurrency: Math.max(1, prefetch) }
        ),
        Stream.flattenIterable,
        // Emitted: from here on the subscriber's, not returned when the subscription ends.
        Stream.tap((n) => Effect.sync(() => n._tag === "Message" && held.delete(n.message.receipt)))
      )
    }))

  return { subscribe, forget, deleted }
}
