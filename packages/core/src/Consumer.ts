/**
 * Provider-neutral consumption. `stream` merges the provider's push with a
 * Schedule-driven poll; `run` adds bounded-concurrency handling, acks,
 * retries with backoff, dead-lettering and a graceful shutdown.
 *
 * Claims are pull-based: push notifications, poll ticks and delayed wake-ups
 * are merged as cheap *signals*, and a single downstream step claims
 * (receive / fetch) only when the consumer asks for more.
 */
import { Clock, Duration, Effect, Exit, Fiber, FiberSet, Metric, Option, Pull, Queue, Schedule, Stream } from "effect"
import type { MessageId, QueuedMessage } from "./Message.ts"
import type { MessageNotification, PushHealth } from "./MessageNotification.ts"
import { Messaging } from "./Messaging.ts"
import type { MessagingError } from "./MessagingError.ts"
import { type DeploymentMode, effective } from "./DeploymentMode.ts"
import { deliveryLatency, handlerDuration } from "./Observability.ts"
import type { QueueName } from "./QueueName.ts"

export interface StreamOptions {
  /** Default `Hybrid`, narrowed by `DeploymentMode.effective`. */
  readonly mode?: DeploymentMode
  /** The fast poll cadence: PollingOnly, and Hybrid while push is degraded (default every 100 ms). */
  readonly poll?: Schedule.Schedule<unknown>
  /** Messages claimed per receive, and the push prefetch (default 16). */
  readonly batchSize?: number
  /** How long a claimed message stays invisible to others (default 30 s). */
  readonly visibilityTimeout?: Duration.Input
}

export interface RunOptions extends StreamOptions {
  /** Handlers running at once (default 1). */
  readonly concurrency?: number
  /** A message failing on this delivery is dead-lettered (default 5). */
  readonly maxReceives?: number
  /** Delay before retry n (n = 1, 2, ...); when the schedule ends, the message is dead-lettered. */
  readonly retryBackoff?: Schedule.Schedule<unknown>
  /** How long in-flight handlers may finish after shutdown begins (default 5 s). */
  readonly shutdownGrace?: Duration.Input
}

type Signal =
  | { readonly _tag: "Deliver"; readonly message: QueuedMessage }
  | { readonly _tag: "Claim"; readonly queue: QueueName; readonly id: Option.Option<MessageId> }
  | { readonly _tag: "Sweep"; readonly queue: QueueName }

const defaults = {
  poll: Schedule.spaced("100 millis"),
  batchSize: 16,
  visibilityTimeout: Duration.seconds(30),
  concurrency: 1,
  maxReceives: 5,
  retryBackoff: Schedule.min([Schedule.exponential("1 second", 2), Schedule.spaced("5 minutes")]),
  shutdownGrace: Duration.seconds(5)
}

/** The deliveries of `queues`, telling `onClaimed` of every message as soon as it is held. */
const deliveries = (
  queues: ReadonlyArray<QueueName>,
  options: StreamOptions,
  onClaimed: (messages: ReadonlyArray<QueuedMessage>) => void
): Stream.Stream<QueuedMessage, MessagingError, Messaging> =>
  Stream.unwrap(Effect.gen(function*() {
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

    const fromNotification = (notification: MessageNotification) =>
      Effect.gen(function*(): Effect.fn.Return<ReadonlyArray<Signal>> {
        if (notification._tag === "Message") return [{ _tag: "Deliver", message: notification.message }]
        const claim: Signal = { _tag: "Claim", queue: notification.queue, id: notification.messageId }
        const now = yield* Clock.currentTimeMillis
        const waitMs = Option.match(notification.visibleAt, { onNone: () => 0, onSome: (at) => at.getTime() - now })
        if (waitMs <= 0) return [claim]
        yield* FiberSet.run(timers, Effect.sleep(waitMs).pipe(Effect.andThen(Queue.offer(followUps, claim))))
        return []
      })

    const claim = (signal: Signal): Effect.Effect<ReadonlyArray<QueuedMessage>, MessagingError> => {
      switch (signal._tag) {
        case "Deliver":
          return Effect.succeed([signal.message])
        case "Claim":
          return Option.isSome(signal.id) && messaging.capabilities.fetchById
            ? messaging.fetch(signal.queue, signal.id.value, { visibilityTimeout }).pipe(
              Effect.map(Option.match({ onNone: () => [], onSome: (message) => [message] }))
            )
            : claim({ _tag: "Sweep", queue: signal.queue })
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

    const push = mode === "PollingOnly"
      ? Stream.empty
      : messaging.subscribe(queues, { visibilityTimeout, prefetch: batchSize }).pipe(
        // Whole chunks at once, so that no delivery waits unregistered inside the pipeline.
        Stream.mapArray((notifications) => {
          onClaimed(notifications.flatMap((n) => n._tag === "Message" ? [n.message] : []))
          return notifications
        }),
        Stream.mapEffect(fromNotification),
        Stream.flattenIterable
      )

    // Catch-up: notifications sent while push was down are lost, so sweep on reconnect.
    const healthSignals = mode === "PollingOnly"
      ? Stream.empty
      : messaging.pushHealth.pipe(
        Stream.tap((state) => Effect.sync(() => health = state._tag)),
        Stream.filter((state) => state._tag === "Reconnected"),
        Stream.flatMap(() => Stream.fromIterable(sweepAll()))
      )

    // Ticks at the fast cadence; a healthy Hybrid consumer only acts once per fallback period.
    const shouldPoll = Effect.map(Clock.currentTimeMillis, (now) =>
      mode === "PollingOnly" || health === "Degraded" || (mode === "Hybrid" && now - lastSweepAt >= fallbackMs))

    const poll = Stream.fromSchedule(options.poll ?? defaults.poll).pipe(
      Stream.filterEffect(() => shouldPoll),
      Stream.flatMap(() => Stream.fromIterable(sweepAll()))
    )

    const signals = Stream.mergeAll([
      // Messages sent before we started were never announced: start with a sweep.
      Stream.fromIterable(sweepAll()),
      push,
      healthSignals,
      poll,
      Stream.fromQueue(followUps)
    ], { concurrency: "unbounded", bufferSize: 1 })

    return signals.pipe(
      Stream.mapEffect((signal: Signal): Effect.Effect<ReadonlyArray<QueuedMessage>, MessagingError> =>
        signal._tag === "Deliver"
          ? Effect.succeed([signal.message])
          : Effect.tap(claim(signal), (messages) => Effect.sync(() => onClaimed(messages)))
      ),
      Stream.flattenIterable
    )
  }))

/** Every message of `queues`, claimed for this consumer, from push and poll. */
export const stream = (
  queues: ReadonlyArray<QueueName>,
  options: StreamOptions = {}
): Stream.Stream<QueuedMessage, MessagingError, Messaging> => deliveries(queues, options, () => {})

/** The delay before retry `attempt`, or none once the schedule is exhausted. */
const backoff = (schedule: Schedule.Schedule<unknown>, attempt: number) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    const now = yield* Clock.currentTimeMillis
    let delay = Option.none<Duration.Duration>()
    for (let i = 0; i < attempt; i++) {
      const next = yield* step(now, undefined).pipe(
        Effect.map(([, duration]) => Option.some(duration)),
        Pull.catchDone(() => Effect.succeed(Option.none<Duration.Duration>()))
      )
      if (Option.isNone(next)) return next
      delay = next
    }
    return delay
  })

const isDecodeError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "DecodeError"

/**
 * Runs `handler` for every message of `queues` until interrupted: success
 * acks, failure nacks with the backoff delay, and a message that fails its
 * last allowed delivery (or does not decode) is dead-lettered. Interruption
 * stops intake, returns claimed-but-unstarted messages at once and gives
 * running handlers `shutdownGrace` to finish.
 */
export const run = <E, R>(
  queues: ReadonlyArray<QueueName>,
  handler: (message: QueuedMessage) => Effect.Effect<void, E, R>,
  options: RunOptions = {}
): Effect.Effect<void, MessagingError, Messaging | R> =>
  Effect.gen(function*() {
    const messaging = yield* Messaging
    const concurrency = options.concurrency ?? defaults.concurrency
    const maxReceives = options.maxReceives ?? defaults.maxReceives
    const retryBackoff = options.retryBackoff ?? defaults.retryBackoff
    const grace = options.shutdownGrace ?? defaults.shutdownGrace
    const unstarted = new Set<QueuedMessage>()

    const settleQuietly = (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) =>
      settle.pipe(
        Effect.catch((error) =>
          Effect.logWarning(`Could not settle message ${message.id} on ${message.queue}: ${error.message}`)
        )
      )
    const requeueNow = (message: QueuedMessage) => settleQuietly(message, messaging.nack(message.receipt))
    const deadLetter = (message: QueuedMessage) =>
      settleQuietly(message, messaging.nack(message.receipt, { requeue: false }))

    const releaseUnstarted = Effect.suspend(() => {
      const held = [...unstarted]
      unstarted.clear()
      return Effect.forEach(held, requeueNow, { concurrency: "unbounded", discard: true })
    })

    const onFailure = (message: QueuedMessage, error: unknown) =>
      Effect.gen(function*() {
        if (isDecodeError(error) || message.receiveCount >= maxReceives) return yield* deadLetter(message)
        const delay = yield* backoff(retryBackoff, message.receiveCount)
        yield* Option.match(delay, {
          onNone: () => deadLetter(message),
          onSome: (duration) => settleQuietly(message, messaging.nack(message.receipt, { delay: duration }))
        })
      })

    const handle = (message: QueuedMessage) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        yield* Metric.update(deliveryLatency, Math.max(0, start - message.enqueuedAt.getTime()))
        const exit = yield* Effect.exit(handler(message))
        yield* Metric.update(handlerDuration, (yield* Clock.currentTimeMillis) - start)
        if (Exit.isSuccess(exit)) return yield* settleQuietly(message, messaging.ack(message.receipt))
        const error = Exit.findErrorOption(exit)
        if (Option.isNone(error)) yield* Effect.logError(`Handler died on message ${message.id} on ${message.queue}`, exit.cause)
        yield* onFailure(message, Option.getOrUndefined(error))
      }).pipe(Effect.onInterrupt(() => requeueNow(message)))

    // The handler runs detached so that interrupting intake leaves it `grace` to finish.
    const process = (message: QueuedMessage) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          unstarted.delete(message)
          if (message.receiveCount > maxReceives) return yield* deadLetter(message)
          const fiber = yield* Effect.forkDetach(handle(message))
          yield* restore(Fiber.await(fiber)).pipe(
            Effect.onInterrupt(() =>
              releaseUnstarted.pipe(
                Effect.andThen(Fiber.await(fiber).pipe(Effect.timeout(grace))),
                Effect.catch(() => Fiber.interrupt(fiber))
              )
            )
          )
        })
      )

    yield* deliveries(queues, options, (messages) => {
      for (const message of messages) unstarted.add(message)
    }).pipe(
      Stream.mapEffect(process, { concurrency, unordered: true }),
      Stream.runDrain,
      Effect.ensuring(releaseUnstarted)
    )
  })
