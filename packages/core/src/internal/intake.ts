/**
 * The consumer's intake: how messages of some queues come to be held. Push
 * deliveries pass straight through; push announcements, poll ticks, delayed
 * wake-ups and catch-up sweeps are merged as cheap *signals*, and one step
 * claims (receive / fetch) only when pulled, so nothing is claimed ahead of
 * demand.
 */
import { Array as Arr, Clock, Duration, Effect, Fiber, FiberSet, Option, Queue, Schedule, Stream } from "effect"
import { effective } from "../DeploymentMode.ts"
import { backoff } from "./backoff.ts"
import type { MessageId, QueuedMessage } from "../Message.ts"
import type { MessageNotification, PushHealth } from "../MessageNotification.ts"
import { Messaging } from "../Messaging.ts"
import type { MessagingError } from "../MessagingError.ts"
import type { QueueName } from "../QueueName.ts"
import type { StreamOptions } from "../Consumer.ts"

export const defaults = {
  poll: Schedule.spaced("100 millis"),
  batchSize: 16,
  visibilityTimeout: Duration.seconds(30)
}

type Signal =
  | {
    readonly _tag: "Claim"
    readonly queue: QueueName
    readonly id: Option.Option<MessageId>
    /** Retries so far of a claim that was due (0 for an announcement that was not delayed). */
    readonly late?: number
  }
  | { readonly _tag: "Sweep"; readonly queue: QueueName }

/**
 * A claim made when a delayed message is due may find it not yet visible: the announced time
 * can be truncated (PGMQ's microseconds) and a timer can fire a millisecond early. It is tried
 * again shortly, a bounded number of times (2, 4, 8, 16, 32 ms after), instead of leaving the
 * message to the fallback poll.
 */
const dueRetry = Schedule.exponential("2 millis").pipe(Schedule.upTo({ times: 5 }))

/**
 * The two intake paths of `queues` (deliveries pushed by the provider, and
 * messages claimed on signals), telling `onClaimed` of every message as soon
 * as it is held. Each path claims only when pulled.
 */
export const intakePaths = (
  queues: ReadonlyArray<QueueName>,
  options: StreamOptions,
  onClaimed: (messages: ReadonlyArray<QueuedMessage>) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const messaging = yield* Messaging
    const mode = effective(options.mode ?? "Hybrid", messaging.capabilities)
    const batchSize = options.batchSize ?? defaults.batchSize
    const visibilityTimeout = options.visibilityTimeout ?? defaults.visibilityTimeout
    const fallbackMs = Duration.toMillis(messaging.capabilities.fallbackPollingInterval)
    const followUps = yield* Queue.unbounded<Signal>()
    const timers = yield* FiberSet.make()
    let health = "Connected" as PushHealth["_tag"]
    let lastSweepAt = Number.NEGATIVE_INFINITY

    const sweepAll = (): ReadonlyArray<Signal> => queues.map((queue) => ({ _tag: "Sweep", queue }))

    const offerLater = (signal: Signal, delay: Duration.Input) =>
      FiberSet.run(timers, Effect.andThen(Effect.sleep(delay), Queue.offer(followUps, signal)))

    /** A due claim that found nothing is tried again shortly, while `dueRetry` lasts. */
    const retryIfDue = (signal: Extract<Signal, { _tag: "Claim" }>) => (messages: ReadonlyArray<QueuedMessage>) => {
      if (signal.late === undefined || messages.length > 0) return Effect.void
      const late = signal.late + 1
      return Effect.flatMap(backoff(dueRetry, late), Option.match({
        onNone: () => Effect.void,
        onSome: (delay) => offerLater({ ...signal, late }, delay)
      }))
    }

    /** Announcements become claim signals, now or (for a future `visibleAt`) when due. */
    const announce = (available: ReadonlyArray<Extract<MessageNotification, { _tag: "Available" }>>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        for (const notification of available) {
          const waitMs = Option.match(notification.visibleAt, { onNone: () => 0, onSome: (at) => at.getTime() - now })
          yield* waitMs <= 0
            ? Queue.offer(followUps, { _tag: "Claim", queue: notification.queue, id: notification.messageId })
            : offerLater({ _tag: "Claim", queue: notification.queue, id: notification.messageId, late: 0 }, waitMs)
        }
      })

    const claim = (signal: Signal): Effect.Effect<ReadonlyArray<QueuedMessage>, MessagingError> => {
      switch (signal._tag) {
        case "Claim":
          return (Option.isSome(signal.id) && messaging.capabilities.fetchById
            ? messaging.fetch(signal.queue, signal.id.value, { visibilityTimeout }).pipe(
              Effect.map(Option.match({ onNone: () => [], onSome: (message) => [message] }))
            )
            : claim({ _tag: "Sweep", queue: signal.queue })).pipe(Effect.tap(retryIfDue(signal)))
        case "Sweep":
          return Effect.gen(function*() {
            lastSweepAt = yield* Clock.currentTimeMillis
            const messages = yield* messaging.receive(signal.queue, { max: batchSize, visibilityTimeout })
            // A full batch means there is probably more: drain before waiting for the schedule.
            if (messages.length === batchSize) yield* Queue.offer(followUps, signal)
            return messages
          })
      }
    }

    // Deliveries pass straight through, a whole chunk at a time, registered on arrival. Each
    // path emits one batch per element: few stages per chunk keep a trickle of single
    // messages cheap.
    const pushed: Stream.Stream<ReadonlyArray<QueuedMessage>, MessagingError> = mode === "PollingOnly"
      ? Stream.empty
      : messaging.subscribe(queues, { visibilityTimeout, prefetch: batchSize }).pipe(
        Stream.mapArrayEffect((notifications) => {
          const delivered: Array<QueuedMessage> = []
          const available: Array<Extract<MessageNotification, { _tag: "Available" }>> = []
          for (const n of notifications) {
            if (n._tag === "Message") delivered.push(n.message)
            else available.push(n)
          }
          const batch = Arr.of<ReadonlyArray<QueuedMessage>>(delivered)
          const held = Effect.as(onClaimed(delivered), batch)
          return available.length === 0 ? held : Effect.andThen(announce(available), held)
        })
      )

    // A provider whose push delivers whole messages and misses none (AMQP consume) hands its
    // backlog to a new or resumed subscription. Any other announces new messages alone, so
    // the consumer must sweep: at start (messages sent before were never announced) and
    // after a reconnect (those sent during the gap were lost).
    const pushCoversBacklog = messaging.capabilities.push === "message" && !messaging.capabilities.requiresFallbackPolling
    const catchUp = mode === "PollingOnly" || !pushCoversBacklog ? Stream.fromIterable(sweepAll()) : Stream.empty

    const healthSignals = mode === "PollingOnly"
      ? Stream.empty
      : messaging.pushHealth.pipe(
        Stream.tap((state) => Effect.sync(() => health = state._tag)),
        Stream.filter((state) => state._tag === "Reconnected"),
        Stream.flatMap(() => catchUp)
      )

    // Ticks at the fast cadence; a healthy Hybrid consumer only acts once per fallback period.
    const shouldPoll = Effect.map(Clock.currentTimeMillis, (now) =>
      mode === "PollingOnly" || health === "Degraded" || (mode === "Hybrid" && now - lastSweepAt >= fallbackMs))

    const poll = Stream.fromSchedule(options.poll ?? defaults.poll).pipe(
      Stream.filterEffect(() => shouldPoll),
      Stream.flatMap(() => Stream.fromIterable(sweepAll()))
    )

    const signals = Stream.mergeAll([
      catchUp,
      healthSignals,
      poll,
      Stream.fromQueue(followUps)
    ], { concurrency: "unbounded", bufferSize: 1 })

    const claimed = signals.pipe(
      // A claim runs in a fiber of its own that the intake's end does not interrupt: one cut
      // short after it reached the server would leave its messages held by nobody for a
      // visibility timeout (and an `onExit` sees the interruption, not the claim's result). It
      // finishes and registers what it claimed; a claim registered after the end goes back.
      Stream.mapEffect((signal) => Effect.flatMap(Effect.forkDetach(Effect.tap(claim(signal), onClaimed)), Fiber.join))
    )

    return [pushed, claimed] as const
  })

