/**
 * Provider-neutral consumption. `stream` merges the provider's push with a
 * Schedule-driven poll; `run` adds bounded-concurrency handling, acks,
 * retries with backoff, dead-lettering and a graceful shutdown.
 * Claims are pull-based (see internal/intake.ts).
 */
import { Array as Arr, Cause, Clock, Effect, Exit, Fiber, FiberSet, Option, Queue, Stream } from "effect"
import * as Acks from "./internal/acks.ts"
import { backoff } from "./internal/backoff.ts"
import { intakePaths } from "./internal/intake.ts"
import * as Options from "./internal/options.ts"
import * as Settles from "./internal/settles.ts"
import type { QueuedMessage } from "./Message.ts"
import { Messaging } from "./Messaging.ts"
import type { MessagingError } from "./MessagingError.ts"
import { deliveryLatency, handlerDuration, withProcessSpan } from "./Observability.ts"
import type { QueueName } from "./QueueName.ts"

export type { RunOptions, StreamOptions } from "./internal/options.ts"

/**
 * Every message of `queues`, claimed for this consumer, from push and poll.
 * What the stream emitted is the caller's to settle, even after the stream
 * ended; what it claimed and did not emit goes back at once when it ends.
 */
export const stream = (
  queues: ReadonlyArray<QueueName>,
  options: Options.StreamOptions = {}
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
      const paths = yield* intakePaths(queues, Options.intake(options, messaging.capabilities), (messages) =>
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
  options: Options.RunOptions = {}
): Effect.Effect<void, MessagingError, Messaging | R> =>
  Effect.gen(function*() {
    const messaging = yield* Messaging
    const o = Options.run(options, messaging.capabilities)

    const settleQuietly = (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) =>
      Effect.catch(settle, (error) =>
        Effect.logWarning(`Could not settle message ${message.id} on ${message.queue}: ${error.message}`))
    const deadLetter = (message: QueuedMessage) =>
      settleQuietly(message, messaging.nack(message.receipt, { requeue: false }))

    const onFailure = (message: QueuedMessage, error: unknown) =>
      Effect.gen(function*() {
        if (isDecodeError(error) || message.receiveCount >= o.maxReceives) return yield* deadLetter(message)
        const delay = yield* backoff(o.retryBackoff, message.receiveCount)
        yield* Option.match(delay, {
          onNone: () => deadLetter(message),
          onSome: (duration) => settleQuietly(message, messaging.nack(message.receipt, { delay: duration }))
        })
      })

    const afterFailure = (message: QueuedMessage, cause: Cause.Cause<E>) => {
      const error = Cause.findErrorOption(cause)
      return Option.isSome(error)
        ? onFailure(message, error.value)
        : Effect.andThen(
          Effect.logError(`Handler died on message ${message.id} on ${message.queue}`, cause),
          onFailure(message, undefined)
        )
    }

    // The inbox holds every claimed-but-unstarted message, and bounds them: an intake path
    // hands a batch over with `offerAll`, which suspends it until the whole batch fits, so a
    // path claims again only once its previous batch is in. A consumer holds at most
    // 4 × concurrency + (k + 3) × batchSize claims, k = ⌈concurrency / batchSize⌉: what the
    // workers hold (each at most four: one it handles and three settling, or four settling), a
    // full inbox, one batch of the push path (whose prefetch is running handlers and a full
    // inbox), the poll path's k claims in flight, each waiting to enter, and up to batchSize
    // claims by id (DESIGN §4). `concurrency` workers take from it (cheaper than a
    // fiber per message); they end when the inbox does.
    const inbox = yield* Queue.bounded<QueuedMessage, Cause.Done>(o.batchSize)
    const acks = yield* Acks.make(messaging)
    const workers = yield* FiberSet.make<void>()

    // Uninterruptible: a batch half-offered when interrupted would be held by nobody. Once the
    // inbox has ended (shutdown), a batch it refuses goes straight back and its path stops
    // there: claiming on would only claim the same messages again. Workers waiting to take are
    // released in the step that admitted the batch (`flushUnsafe`), so an idle worker starts
    // its handler in the turn the delivery arrived: the queue alone would wake it a scheduler
    // round later, after whatever else that round runs (a provider's next read, a reply). Not
    // after an offer that had to wait: a worker taking resumed it, and none waits while the inbox
    // holds anything.
    const admitted = (refused: ReadonlyArray<QueuedMessage>) =>
      refused.length === 0 ? Effect.succeed(true) : Effect.as(release(messaging, new Set(refused)), false)
    const admit = (messages: ReadonlyArray<QueuedMessage>) =>
      messages.length === 0 ? Effect.void : Effect.flatMap(
        Effect.uninterruptible(Effect.suspend(() => {
          const rest = Queue.offerAllUnsafe(inbox, messages)
          if (rest.length < messages.length) Queue.flushUnsafe(inbox)
          return rest.length === 0 ? Effect.succeed(true) : Effect.flatMap(Queue.offerAll(inbox, rest), admitted)
        })),
        (ok) => ok ? Effect.void : Effect.interrupt
      )

    // A worker holds at most four messages: `held` names the one it handles from the step that
    // takes it until its settle is handed off (internal/settles.ts), and the settles hold the
    // ones still settling (at most four, then the worker waits for the oldest before it takes
    // again); the worker's one finalizer returns all of them if the worker is interrupted in
    // between (shutdown's grace ran out). A worker that ends with the inbox first waits for
    // its settles. Only waiting to take is uninterruptible (shutdown ends the inbox, which
    // ends every worker waiting on it), and dead-lettering, which must finish.
    // It does not yield after each message (the runtime still yields every `MaxOpsBeforeYield`
    // steps). Few steps and allocations per message, on purpose: the worker's clock, context
    // and continuations are made once per worker, and a message already in the inbox is taken
    // without a step.
    const worker = Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      const context = fiber.context
      let held: QueuedMessage | undefined
      let start = 0
      const hold = (message: QueuedMessage) => (held = message)
      const settles = Settles.make(context, acks)
      const ran = () => handlerDuration.updateUnsafe(clock.currentTimeMillisUnsafe() - start, context)
      // One parameter each: the runtime wraps a handler of any other arity in a closure.
      const outcome = {
        onSuccess: (_: void) => {
          ran()
          return handedOver(settles.handOffAck(held!))
        },
        onFailure: (cause: Cause.Cause<E>) => {
          ran()
          return handOff(held!, afterFailure(held!, cause))
        }
      }
      // The settles hold the message from the hand-over on, the worker no longer.
      const handedOver = (rest: Effect.Effect<void, MessagingError>) => {
        held = undefined
        return rest
      }
      const handOff = (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) =>
        handedOver(settles.handOff(message, settle))
      const handle = (message: QueuedMessage): Effect.Effect<void, MessagingError, R> => {
        hold(message)
        if (message.receiveCount > o.maxReceives) return handOff(message, Effect.uninterruptible(deadLetter(message)))
        start = clock.currentTimeMillisUnsafe()
        deliveryLatency.updateUnsafe(Math.max(0, start - message.enqueuedAt.getTime()), context)
        // Eager: a handler that returns an effect already resolved (`Effect.void` for a message
        // it skips) goes straight to its settle.
        return Effect.matchCauseEffectEager(withProcessSpan(messaging.provider, message, handler(message)), outcome)
      }
      const waitToTake = Effect.uninterruptible(Effect.map(Queue.take(inbox), hold))
      const next = Effect.suspend(() => {
        const taken = Queue.takeUnsafe(inbox)
        return taken === undefined
          ? Effect.flatMap(waitToTake, handle)
          : Exit.isSuccess(taken)
          ? handle(taken.value)
          : taken
      })
      // The only typed failure of `next` is the inbox's end.
      return Effect.onExitPrimitive(
        Effect.catch(Effect.forever(next, { disableYield: true }), () => settles.drain),
        () => {
          if (held === undefined && settles.isEmpty()) return undefined
          const taken = held
          return Effect.flatMap(settles.unsettled, (settling) =>
            release(messaging, new Set(taken === undefined ? settling : [taken, ...settling])))
        }
      )
    }).pipe(Effect.catch(() => Effect.void))

    const intake = Effect.flatMap(
      intakePaths(queues, o, admit),
      (paths) => Effect.forEach(paths, Stream.runDrain, { concurrency: "unbounded", discard: true })
    ).pipe(Effect.scoped)

    // Shutdown: the inbox ends (no more hand-overs; workers stop taking once it is empty) and
    // is emptied — which also completes a path's pending hand-over, so the intake can then be
    // interrupted before it claims again (a subscription's end leaves what it emitted to us).
    // What the inbox held goes back at once, and running handlers get the grace.
    const stop = (intakeFiber: Fiber.Fiber<void, MessagingError>) =>
      Effect.gen(function*() {
        yield* Queue.end(inbox)
        const unstarted = new Set<QueuedMessage>()
        for (let held = yield* Queue.clear(inbox); held.length > 0; held = yield* Queue.clear(inbox)) {
          for (const message of held) unstarted.add(message)
        }
        yield* Fiber.interrupt(intakeFiber)
        yield* release(messaging, unstarted)
        yield* FiberSet.awaitEmpty(workers).pipe(Effect.timeout(o.shutdownGrace), Effect.ignore)
        yield* FiberSet.clear(workers)
      })

    yield* Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const intakeFiber = yield* Effect.forkChild(restore(intake))
        for (let i = 0; i < o.concurrency; i++) yield* FiberSet.run(workers, restore(worker))
        // The intake only ends by failing: surface its error after stopping the workers.
        yield* restore(Fiber.join(intakeFiber)).pipe(Effect.ensuring(stop(intakeFiber)))
      })
    )
  }).pipe(Effect.scoped)
