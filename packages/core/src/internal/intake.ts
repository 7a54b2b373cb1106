/**
 * The consumer's intake: how messages of some queues come to be held. Push
 * deliveries pass straight through; push announcements, poll ticks, delayed
 * wake-ups and catch-up sweeps are merged as cheap *signals*, and one step
 * claims (receive / fetch) only when pulled, so nothing is claimed ahead of
 * demand.
 */
import { Array as Arr, Clock, Duration, Effect, Fiber, FiberSet, Option, Queue, Schedule, Semaphore, Stream } from "effect"
import type { MessageId, QueuedMessage } from "../Message.ts"
import type { MessageNotification, PushHealth } from "../MessageNotification.ts"
import { type Capabilities, Messaging } from "../Messaging.ts"
import type { MessagingError } from "../MessagingError.ts"
import type { QueueName } from "../QueueName.ts"
import { backoff } from "./backoff.ts"
import type { Intake } from "./options.ts"

type Signal =
  | {
    readonly _tag: "Claim"
    readonly queue: QueueName
    readonly id: Option.Option<MessageId>
    /** Retries so far of a claim that was due (absent for an announcement that was not delayed). */
    readonly late?: number
  }
  | { readonly _tag: "Sweep"; readonly queue: QueueName }

type Available = Extract<MessageNotification, { _tag: "Available" }>

/**
 * A claim made when a delayed message is due may find it not yet visible: the announced time
 * can be truncated (PGMQ's microseconds) and a timer can fire a millisecond early. It is tried
 * again shortly, a bounded number of times (2, 4, 8, 16, 32 ms after), instead of leaving the
 * message to the fallback poll.
 */
const dueRetry = Schedule.exponential("2 millis").pipe(Schedule.upTo({ times: 5 }))

/**
 * How long a sweep waits for a first message on a provider that long polls: the poll
 * schedule's period (its first delay), capped by the provider's longest wait. A sweep parked on
 * an idle queue then ends about when the next is due, so a message reaches the consumer in one
 * long-poll round trip rather than at the next poll, and a claim let finish after shutdown
 * (see `claimed`) holds its messages no longer than a period.
 */
const longPoll = (poll: Schedule.Schedule<unknown>, capabilities: Capabilities) => {
  const longest = capabilities.maxWaitTime
  return longest === undefined
    ? Effect.succeed(Option.none<Duration.Duration>())
    : Effect.map(backoff(poll, 1), Option.map((period) => Duration.min(period, longest)))
}

/**
 * The two intake paths of `queues` (deliveries pushed by the provider, and
 * messages claimed on signals). Every message is handed to `onClaimed` as
 * soon as it is held — which may suspend, and so pauses that path — and then
 * emitted in its batch. Each path claims only when pulled.
 */
export const intakePaths = (
  queues: ReadonlyArray<QueueName>,
  options: Intake,
  onClaimed: (messages: ReadonlyArray<QueuedMessage>) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const messaging = yield* Messaging
    const { batchSize, mode, visibilityTimeout } = options
    const followUps = yield* Queue.unbounded<Signal>()
    const timers = yield* FiberSet.make()
    const waitTime = Option.getOrUndefined(yield* longPoll(options.poll, messaging.capabilities))
    const sweep = waitTime === undefined ? { max: batchSize, visibilityTimeout } : { max: batchSize, visibilityTimeout, waitTime }

    // A sweep starts `claimsInFlight` chains of claims per queue; each chain claims again while
    // its batches come back full (drain), so that many claims are in flight while a queue drains.
    const sweepAll = Stream.fromIterable(
      queues.flatMap((queue) => Array.from({ length: options.claimsInFlight }, (): Signal => ({ _tag: "Sweep", queue })))
    )
    const offerLater = (signal: Signal, delay: Duration.Input) =>
      FiberSet.run(timers, Effect.andThen(Effect.sleep(delay), Queue.offer(followUps, signal)))

    /** Announcements become claim signals, now or (for a future `visibleAt`) when due. */
    const announce = (available: ReadonlyArray<Available>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        for (const { messageId: id, queue, visibleAt } of available) {
          const waitMs = Option.match(visibleAt, { onNone: () => 0, onSome: (at) => at.getTime() - now })
          yield* waitMs <= 0
            ? Queue.offer(followUps, { _tag: "Claim", queue, id })
            : offerLater({ _tag: "Claim", queue, id, late: 0 }, waitMs)
        }
      })

    /** A due claim that found nothing is tried again shortly, while `dueRetry` lasts. */
    const retryIfDue = (signal: Extract<Signal, { _tag: "Claim" }>) => (messages: ReadonlyArray<QueuedMessage>) => {
      if (signal.late === undefined || messages.length > 0) return Effect.void
      const late = signal.late + 1
      return Effect.flatMap(backoff(dueRetry, late), Option.match({
        onNone: () => Effect.void,
        onSome: (delay) => offerLater({ ...signal, late }, delay)
      }))
    }

    const claim = (signal: Signal): Effect.Effect<ReadonlyArray<QueuedMessage>, MessagingError> => {
      switch (signal._tag) {
        case "Claim":
          return (Option.isSome(signal.id) && messaging.capabilities.fetchById
            ? messaging.fetch(signal.queue, signal.id.value, { visibilityTimeout }).pipe(
              Effect.map(Option.match({ onNone: () => [], onSome: (message) => [message] }))
            )
            : claim({ _tag: "Sweep", queue: signal.queue })).pipe(Effect.tap(retryIfDue(signal)))
        case "Sweep":
          return messaging.receive(signal.queue, sweep).pipe(
            // A full batch means there is probably more: drain before waiting for the schedule.
            // A long poll that brought anything polls again at once too: parked on an idle queue
            // it costs nothing, and the next message need not wait for the schedule.
            Effect.tap((messages) =>
              messages.length === batchSize || (waitTime !== undefined && messages.length > 0)
                ? Queue.offer(followUps, signal)
                : Effect.void
            )
          )
      }
    }

    // Deliveries pass straight through, a whole chunk at a time. Each path emits one batch per
    // element: few stages per chunk keep a trickle of single messages cheap.
    const pushed: Stream.Stream<ReadonlyArray<QueuedMessage>, MessagingError> = mode === "PollingOnly"
      ? Stream.empty
      : messaging.subscribe(queues, { visibilityTimeout, prefetch: options.prefetch }).pipe(
        Stream.mapArrayEffect((notifications) => {
          const delivered: Array<QueuedMessage> = []
          const available: Array<Available> = []
          for (const n of notifications) {
            if (n._tag === "Message") delivered.push(n.message)
            else available.push(n)
          }
          const held = Effect.as(onClaimed(delivered), Arr.of<ReadonlyArray<QueuedMessage>>(delivered))
          return available.length === 0 ? held : Effect.andThen(announce(available), held)
        })
      )

    // A provider whose push delivers whole messages and misses none (AMQP consume) hands its
    // backlog to a new or resumed subscription. Any other announces new messages alone, so
    // the consumer must sweep: at start (messages sent before were never announced) and
    // after a reconnect (those sent during the gap were lost).
    const pushCoversBacklog = messaging.capabilities.push === "message" && !messaging.capabilities.requiresFallbackPolling
    const catchUp = mode === "PollingOnly" || !pushCoversBacklog ? sweepAll : Stream.empty
    const every = (schedule: Schedule.Schedule<unknown>) => Stream.flatMap(Stream.fromSchedule(schedule), () => sweepAll)

    // The poll schedule follows push health: the fast cadence while push is degraded, else the
    // fallback period (Hybrid) or none (EventDrivenOnly); a reconnect sweeps first.
    const steady = mode === "Hybrid" ? every(Schedule.spaced(options.fallback)) : Stream.empty
    const byHealth = (state: PushHealth): Stream.Stream<Signal> => {
      switch (state._tag) {
        case "Degraded":
          return every(options.poll)
        case "Reconnected":
          return Stream.concat(catchUp, steady)
        case "Connected":
          return steady
      }
    }
    const polls = mode === "PollingOnly" ? every(options.poll) : Stream.switchMap(messaging.pushHealth, byHealth)

    const signals = Stream.mergeAll([catchUp, polls, Stream.fromQueue(followUps)], {
      concurrency: "unbounded",
      bufferSize: 1
    })

    // Claims of a batch (sweeps) keep to `claimsInFlight`. Claims of one announced message by
    // id run beside them, up to `batchSize` at once: messages falling due together must not
    // wait behind one slow round trip each (they coalesce into one statement where the provider
    // batches), and each holds at most one message, so they add at most one batch to the bound.
    const sweeping = yield* Semaphore.make(options.claimsInFlight)
    const byId = (signal: Signal) => signal._tag === "Claim" && Option.isSome(signal.id) && messaging.capabilities.fetchById
    const claimed = signals.pipe(
      // A claim runs in a fiber of its own that the intake's end does not interrupt: one cut
      // short after it reached the server would leave its messages held by nobody for a
      // visibility timeout (and an `onExit` sees the interruption, not the claim's result). It
      // finishes and hands on what it claimed; a claim handed on after the end goes back. It
      // starts at once, not a scheduler round later: a re-poll after a long poll answered is on
      // the next message's path.
      Stream.mapEffect((signal) => {
        const claiming = Effect.tap(claim(signal), onClaimed)
        return Effect.flatMap(
          Effect.forkDetach(byId(signal) ? claiming : Semaphore.withPermits(sweeping, 1)(claiming), { startImmediately: true }),
          Fiber.join
        )
      }, { concurrency: options.claimsInFlight + batchSize, unordered: true })
    )

    return [pushed, claimed] as const
  })
