/**
 * PGMQ push: listener events become notifications. Every message announced
 * as visible now (inline payload, `message_ready`, the ids of `batch_ready`)
 * is claimed by id before it is handed on, as a delivery; if another
 * consumer won, nothing is delivered. A delayed message, or the unlisted
 * rest of a batch, becomes `Available` for the consumer to claim when due.
 *
 * Natural batching, in the subscription itself: each pull takes every event
 * heard since the last one and claims their ids with one statement per
 * queue and `prefetch` ids, one such slice at a time. While a claim is on
 * the wire the next events gather, so a busy queue is claimed in large
 * slices and a lone message at once, with no hand-off to a batching fiber
 * (each costs an event-loop turn on the idle path).
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
import { Array as Arr, Clock, Deferred, type Duration, Effect, Exit, Option, Schedule, Stream } from "effect"
import type * as PgmqEvent from "../PgmqEvent.ts"

export interface Dependencies {
  readonly events: (queues: ReadonlyArray<QueueName.QueueName>) => Stream.Stream<PgmqEvent.PgmqEvent>
  /**
   * Claims the visible ones of `ids` in one statement, one `Option` per id in order
   * (uninterruptibly: a claim made is never lost track of).
   */
  readonly claimMany: (
    queue: QueueName.QueueName,
    ids: ReadonlyArray<string>,
    visibilityMs: number
  ) => Effect.Effect<ReadonlyArray<Option.Option<Message.QueuedMessage>>, MessagingError.MessagingError>
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
  // `delay_seconds` 0 is the server's own word that the rows were visible at the insert (the
  // trigger's delay is the ceiling of the seconds to the latest `vt`). `ready_at` alone is rounded
  // up to the millisecond and read on this process's clock: a notification arriving within that
  // millisecond would wait for a timer and a second claim.
  const due = event.delaySeconds === 0 || event.readyAt.getTime() <= now
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

  /** One slice of steps: its claims, one statement per queue, and its announcements, in order. */
  const take = (
    slice: ReadonlyArray<Step>,
    visibilityMs: number
  ): Effect.Effect<ReadonlyArray<MessageNotification.MessageNotification>> => {
    const ids = new Map<QueueName.QueueName, Array<string>>()
    for (const step of slice) {
      if (step._tag !== "Claim") continue
      const group = ids.get(step.queue)
      if (group === undefined) ids.set(step.queue, [step.id])
      else group.push(step.id)
    }
    return Effect.map(
      Effect.forEach(ids, ([queue, group]) =>
        dependencies.claimMany(queue, group, visibilityMs).pipe(
          // A claim that failed still announces its messages: the consumer claims them later.
          Effect.orElseSucceed(() => group.map(() => undefined)),
          Effect.map((claimed) => [queue, claimed] as const)
        ), { concurrency: ids.size > 1 ? "unbounded" : 1 }),
      (answers) => {
        const byQueue = new Map(answers.map(([queue, claimed]) => [queue, { claimed, next: 0 }]))
        const notifications: Array<MessageNotification.MessageNotification> = []
        for (const step of slice) {
          if (step._tag === "Announce") {
            notifications.push(step.notification)
            continue
          }
          const answer = byQueue.get(step.queue)!
          const claimed = answer.claimed[answer.next++]
          if (claimed === undefined) {
            notifications.push(MessageNotification.Available({ queue: step.queue, messageId: Option.some(step.id), visibleAt: Option.none() }))
          } else if (Option.isSome(claimed)) notifications.push(MessageNotification.Message({ message: claimed.value }))
        }
        return notifications
      }
    )
  }

  const subscribe = (queues: ReadonlyArray<QueueName.QueueName>, visibilityMs: number, prefetch = defaultPrefetch) =>
    Stream.unwrap(Effect.gen(function*() {
      const held = new Set<Message.Receipt>()
      let ended = false
      const releaseAll = (receipts: ReadonlyArray<Message.Receipt>) =>
        Effect.forEach(receipts, (receipt) => Effect.ignore(dependencies.release(receipt)), {
          concurrency: "unbounded",
          discard: true
        })
      yield* Effect.acquireRelease(
        Effect.sync(() => live.add(held)),
        () =>
          Effect.suspend(() => {
            ended = true
            live.delete(held)
            const receipts = [...held]
            held.clear()
            return releaseAll(receipts)
          })
      )
      const limit = Math.max(1, prefetch)
      const slices = (events: Arr.NonEmptyReadonlyArray<PgmqEvent.PgmqEvent>, now: number) => {
        const steps = events.flatMap((event) => stepsOf(event, now))
        const claims = steps.filter((step) => step._tag === "Claim").length
        if (claims <= limit) return Arr.of(steps)
        // At most `limit` claims per slice, each slice claimed once the previous one is pulled.
        const cut: Arr.NonEmptyArray<Array<Step>> = [[]]
        let inSlice = 0
        for (const step of steps) {
          if (step._tag === "Claim" && inSlice === limit) {
            cut.push([])
            inSlice = 0
          }
          if (step._tag === "Claim") inSlice++
          cut[cut.length - 1]!.push(step)
        }
        return cut
      }
      const gone = yield* untilGone(queues)
      // On the events, before any claim: a merge buffers, and a delivery must never wait in a
      // buffer after it counts as emitted (it would be lost to the stream's end).
      return dependencies.events(queues).pipe(
        Stream.interruptWhen(gone),
        Stream.mapArrayEffect((events) => Effect.map(Clock.currentTimeMillis, (now) => slices(events, now))),
        Stream.mapEffect((slice) =>
          // A claim that reached the database is recorded, even if the stream is being interrupted;
          // one that comes back after the end (which does not wait for it) goes straight back.
          Effect.uninterruptible(Effect.flatMap(take(slice, visibilityMs), (notifications) => {
            const claimed = notifications.flatMap((n) => n._tag === "Message" ? [n.message.receipt] : [])
            if (ended) return Effect.as(releaseAll(claimed), notifications.filter((n) => n._tag !== "Message"))
            for (const receipt of claimed) held.add(receipt)
            return Effect.succeed(notifications)
          }))
        ),
        Stream.filter((batch): batch is Arr.NonEmptyReadonlyArray<MessageNotification.MessageNotification> =>
          batch.length > 0
        ),
        Stream.flattenArray,
        // Emitted: from here on the subscriber's, not returned when the subscription ends.
        Stream.tap((n) => Effect.sync(() => n._tag === "Message" && held.delete(n.message.receipt)))
      )
    }))

  return { subscribe, forget, deleted }
}
