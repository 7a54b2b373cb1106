/**
 * Provider-neutral consumption. `stream` merges the provider's push with a
 * Schedule-driven poll; `run` adds bounded-concurrency handling, acks,
 * retries with backoff, dead-lettering and a graceful shutdown.
 *
 * Claims are pull-based: push notifications, poll ticks and delayed wake-ups
 * are merged as cheap *signals*, and a single downstream step claims
 * (receive / fetch) only when the consumer asks for more.
 */
import { Array as Arr, Clock, Deferred, Duration, Effect, Exit, Fiber, FiberSet, Latch, Option, Pull, Queue, Schedule, Stream } from "effect"
import type { MessageId, QueuedMessage } from "./Message.ts"
import type { MessageNotification, PushHealth } from "./MessageNotification.ts"
import { Messaging } from "./Messaging.ts"
import type { MessagingError } from "./MessagingError.ts"
import { type DeploymentMode, effective } from "./DeploymentMode.ts"
import { deliveryLatency, handlerDuration, withProcessSpan } from "./Observability.ts"
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

/**
 * The two intake paths of `queues` (deliveries pushed by the provider, and
 * messages claimed on signals), telling `onClaimed` of every message as soon
 * as it is held. Each path claims only when pulled.
 */
const intakePaths = (
  queues: ReadonlyArray<QueueName>,
  options: StreamOptions,
  onClaimed: (messages: ReadonlyArray<QueuedMessage>) => void
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

    /** Announcements become claim signals, now or (for a future `visibleAt`) when due. */
    const announce = (available: ReadonlyArray<Extract<MessageNotification, { _tag: "Available" }>>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        for (const notification of available) {
          const signal: Signal = { _tag: "Claim", queue: notification.queue, id: notification.messageId }
          const waitMs = Option.match(notification.visibleAt, { onNone: () => 0, onSome: (at) => at.getTime() - now })
          yield* waitMs <= 0
            ? Queue.offer(followUps, signal)
            : FiberSet.run(timers, Effect.andThen(Effect.sleep(waitMs), Queue.offer(followUps, signal)))
        }
      })

    const claim = (signal: Signal): Effect.Effect<ReadonlyArray<QueuedMessage>, MessagingError> => {
      switch (signal._tag) {
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
          onClaimed(delivered)
          const batch = Arr.of<ReadonlyArray<QueuedMessage>>(delivered)
          return available.length === 0 ? Effect.succeed(batch) : Effect.as(announce(available), batch)
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
      Stream.mapEffect((signal) => Effect.tap(claim(signal), (messages) => Effect.sync(() => onClaimed(messages))))
    )

    return [pushed, claimed] as const
  })

/** Every message of `queues`, claimed for this consumer, from push and poll. */
export const stream = (
  queues: ReadonlyArray<QueueName>,
  options: StreamOptions = {}
): Stream.Stream<QueuedMessage, MessagingError, Messaging> =>
  Stream.unwrap(
    Effect.map(intakePaths(queues, options, () => {}), (paths) =>
      Stream.mergeAll(paths, { concurrency: 2, bufferSize: 1 }).pipe(
        Stream.filter(Arr.isReadonlyArrayNonEmpty),
        Stream.flattenArray
      ))
  )

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
    // Returning a claim the provider already took back (its channel closed at shutdown) is
    // the expected outcome, not a problem worth a warning.
    const requeueNow = (message: QueuedMessage) =>
      settleQuietly(
        message,
        messaging.nack(message.receipt).pipe(
          Effect.catchTag("StaleReceipt", (stale) => Effect.logDebug(`Already returned: ${stale.message}`))
        )
      )
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

    const afterFailure = (message: QueuedMessage, exit: Exit.Failure<void, E>) => {
      const error = Exit.findErrorOption(exit)
      return Option.isSome(error)
        ? onFailure(message, error.value)
        : Effect.andThen(
          Effect.logError(`Handler died on message ${message.id} on ${message.queue}`, exit.cause),
          onFailure(message, undefined)
        )
    }

    // Written with few steps on purpose: this runs once per message.
    const handle = (message: QueuedMessage): Effect.Effect<void, never, R> =>
      Effect.clockWith((clock) => {
        const start = clock.currentTimeMillisUnsafe()
        return Effect.flatMap(Effect.exit(withProcessSpan(messaging.provider, message, handler(message))), (exit) =>
          Effect.contextWith((context) => {
            deliveryLatency.updateUnsafe(Math.max(0, start - message.enqueuedAt.getTime()), context)
            handlerDuration.updateUnsafe(clock.currentTimeMillisUnsafe() - start, context)
            return Exit.isSuccess(exit) ? settleQuietly(message, messaging.ack(message.receipt)) : afterFailure(message, exit)
          }))
      })

    // `concurrency` workers take from an inbox: cheaper than a fiber per message. Each intake
    // path (push, poll) pauses once `batchSize` messages wait in the inbox and claims again
    // only when resumed, so a consumer holds at most concurrency + 3 × batchSize claims
    // (one batch of each path on top of a nearly full inbox); pausing per batch rather than
    // per message avoids a producer/consumer wake-up for every message.
    // Shutdown: workers stop taking, unstarted claims are returned at once, running
    // handlers get `grace` to finish, then the intake (and its subscription) is torn down.
    const inbox = yield* Queue.unbounded<QueuedMessage>()
    const room = Latch.makeUnsafe(true)
    const backlogLimit = options.batchSize ?? defaults.batchSize
    let queued = 0
    let stopping = false
    let running = 0
    const idle = Deferred.makeUnsafe<void>()

    const process = (message: QueuedMessage): Effect.Effect<void, never, R> => {
      unstarted.delete(message)
      if (--queued < backlogLimit) Latch.openUnsafe(room)
      if (message.receiveCount > maxReceives) return deadLetter(message)
      running++
      return Effect.onExit(handle(message), (exit) => {
        if (--running === 0 && stopping) Deferred.doneUnsafe(idle, Effect.void)
        return Exit.hasInterrupts(exit) ? requeueNow(message) : Effect.void
      })
    }
    const worker = Effect.whileLoop({
      while: () => !stopping,
      body: () => Effect.flatMap(Queue.take(inbox), process),
      step: () => {}
    })

    const admit = (messages: ReadonlyArray<QueuedMessage>) => {
      // Claimed while stopping: hand it back and claim nothing more.
      if (stopping) return Effect.andThen(releaseUnstarted, Effect.never)
      if (messages.length === 0) return Effect.void
      Queue.offerAllUnsafe(inbox, messages)
      queued += messages.length
      if (queued < backlogLimit) return Effect.void
      Latch.closeUnsafe(room)
      return room.await
    }
    const intake = Effect.flatMap(
      intakePaths(queues, options, (messages) => {
        for (const message of messages) unstarted.add(message)
      }),
      (paths) => Effect.forEach(paths, Stream.runForEach(admit), { concurrency: "unbounded", discard: true })
    ).pipe(Effect.scoped)

    const stop = (fibers: ReadonlyArray<Fiber.Fiber<unknown, unknown>>) =>
      Effect.gen(function*() {
        stopping = true
        if (running === 0) Deferred.doneUnsafe(idle, Effect.void)
        yield* releaseUnstarted
        yield* Deferred.await(idle).pipe(Effect.timeout(grace), Effect.ignore)
        yield* Fiber.interruptAll(fibers)
      })

    yield* Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const intakeFiber = yield* Effect.forkChild(restore(intake))
        const workers = yield* Effect.forEach(
          Array.from({ length: concurrency }),
          () => Effect.forkChild(restore(worker))
        )
        const all = [intakeFiber, ...workers]
        // The intake only ends by failing: surface its error after stopping the workers.
        yield* restore(Fiber.join(intakeFiber)).pipe(
          Effect.onInterrupt(() => stop(all)),
          Effect.onError(() => stop(all))
        )
      })
    ).pipe(Effect.ensuring(releaseUnstarted))
  })
