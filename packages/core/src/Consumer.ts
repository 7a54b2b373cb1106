/**
 * Provider-neutral consumption. `stream` merges the provider's push with a
 * Schedule-driven poll; `run` adds bounded-concurrency handling, acks,
 * retries with backoff, dead-lettering and a graceful shutdown.
 * Claims are pull-based (see internal/intake.ts).
 */
import { Array as Arr, Deferred, Duration, Effect, Exit, Fiber, Latch, Option, Queue, Schedule, Stream } from "effect"
import type { DeploymentMode } from "./DeploymentMode.ts"
import { backoff } from "./internal/backoff.ts"
import { defaults as intakeDefaults, intakePaths } from "./internal/intake.ts"
import type { QueuedMessage } from "./Message.ts"
import { Messaging } from "./Messaging.ts"
import type { MessagingError } from "./MessagingError.ts"
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

const defaults = {
  ...intakeDefaults,
  concurrency: 1,
  maxReceives: 5,
  retryBackoff: Schedule.min([Schedule.exponential("1 second", 2), Schedule.spaced("5 minutes")]),
  shutdownGrace: Duration.seconds(5)
}

/**
 * Every message of `queues`, claimed for this consumer, from push and poll.
 * What the stream emitted is the caller's to settle, even after the stream
 * ended; what it claimed and did not emit goes back at once when it ends.
 */
export const stream = (
  queues: ReadonlyArray<QueueName>,
  options: StreamOptions = {}
): Stream.Stream<QueuedMessage, MessagingError, Messaging> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const messaging = yield* Messaging
      const unemitted = new Set<QueuedMessage>()
      let ended = false
      yield* Effect.addFinalizer(() => Effect.suspend(() => {
        ended = true
        return release(messaging, unemitted)
      }))
      const paths = yield* intakePaths(queues, options, (messages) =>
        Effect.suspend(() => {
          for (const message of messages) unemitted.add(message)
          return ended ? release(messaging, unemitted) : Effect.void
        }))
      // Element by element at the end, so a message counts as emitted only once the caller pulled it.
      return Stream.mergeAll(paths, { concurrency: 2, bufferSize: 1 }).pipe(
        Stream.filter(Arr.isReadonlyArrayNonEmpty),
        Stream.flattenArray,
        Stream.tap((message) => Effect.sync(() => unemitted.delete(message)))
      )
    })
  )

/**
 * Makes `held` visible again at once. Uninterruptible: it runs while its fiber is being
 * shut down, and a release cut short would leave its messages claimed by nobody for a whole
 * visibility timeout. Returning a claim the provider already took back (its channel closed)
 * is the expected outcome, not worth a warning.
 */
const release = (messaging: Messaging["Service"], held: Set<QueuedMessage>): Effect.Effect<void> =>
  Effect.uninterruptible(Effect.suspend(() => {
    const messages = [...held]
    held.clear()
    return Effect.forEach(messages, (message) =>
      messaging.nack(message.receipt).pipe(
        Effect.catchTag("StaleReceipt", (stale) => Effect.logDebug(`Already returned: ${stale.message}`)),
        Effect.catch((error) =>
          Effect.logWarning(`Could not return message ${message.id} on ${message.queue}: ${error.message}`)
        )
      ), { concurrency: "unbounded", discard: true })
  }))

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
    const deadLetter = (message: QueuedMessage) =>
      settleQuietly(message, messaging.nack(message.receipt, { requeue: false }))
    const releaseUnstarted = release(messaging, unstarted)

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

    // Taking a message out of `unstarted` and making its handler return it if interrupted
    // happen together: no interruption can fall between them.
    const process = (message: QueuedMessage): Effect.Effect<void, never, R> =>
      Effect.uninterruptibleMask((restore) => {
        unstarted.delete(message)
        if (--queued < backlogLimit) Latch.openUnsafe(room)
        if (message.receiveCount > maxReceives) return deadLetter(message)
        running++
        return Effect.onExit(restore(handle(message)), (exit) => {
          if (--running === 0 && stopping) Deferred.doneUnsafe(idle, Effect.void)
          return Exit.hasInterrupts(exit) ? release(messaging, new Set([message])) : Effect.void
        })
      })
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
      intakePaths(queues, options, (messages) =>
        Effect.suspend(() => {
          for (const message of messages) unstarted.add(message)
          // Claimed after shutdown began: nobody will take it from the inbox.
          return stopping ? releaseUnstarted : Effect.void
        })),
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
