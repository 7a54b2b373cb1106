/**
 * A worker's settles in flight (its acks, nacks and dead-letter moves), off
 * its critical path: the worker hands the settle of the message it just
 * handled to a fiber of its own and takes its next message while that settle
 * is on the wire; it waits only when it hands off a second while the first
 * still runs, and then for the first alone. A worker therefore holds at most
 * two messages — one handled and one settling, or two settling — and its
 * settles still run concurrently with every other worker's, so providers
 * coalesce them through `Batching` (one round trip per batch). Waiting for each
 * settle before taking the next message cost a settle round trip per message
 * per worker: ~95 % of a worker's time on Redis and PGMQ W2 @16.
 */
import { Cause, type Context, Effect, Exit, Fiber, Option } from "effect"
import type { QueuedMessage } from "../Message.ts"
import type { MessagingError } from "../MessagingError.ts"

interface Settle {
  readonly message: QueuedMessage
  readonly fiber: Fiber.Fiber<void, MessagingError>
}

export interface Settles {
  /**
   * Starts `settle` of `message` at once — the worker no longer holds the message, the
   * settles do — and answers what remains: waiting for the older settle if it still runs. A
   * settle that failed is logged; one interrupted or dying fails the worker with its cause
   * and stays for `unsettled`.
   */
  readonly handOff: (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) => Effect.Effect<void, MessagingError>
  /** Waits for every settle in flight (a worker's end, within the shutdown grace). */
  readonly drain: Effect.Effect<void, MessagingError>
  /** Whether no settle is in flight or unaccounted for. */
  readonly isEmpty: () => boolean
  /**
   * Interrupts the settles still running (one uninterruptible, a dead-letter move, is let
   * finish) and answers the messages whose settle did not succeed, for the worker's
   * finalizer to return.
   */
  readonly unsettled: Effect.Effect<ReadonlyArray<QueuedMessage>>
}

/** At most two settles in flight: one per message the worker holds beyond the one it handles. */
const depth = 2

/** The settles of one worker, run in the worker's `context`. */
export const make = (context: Context.Context<never>): Settles => {
  // Oldest first; a settle leaves only once it ended in success or a logged failure.
  const inFlight: Array<Settle> = []
  // Each settle is a fiber of its own, started at once: one that needs no round trip (in
  // memory) ends before `handOff` returns, without a scheduler turn. Not a child of the
  // worker: the worker waits for them (`drain`) or interrupts them (`unsettled`) itself.
  const fork = Effect.runForkWith(context)

  const ended = (settle: Settle, exit: Exit.Exit<void, MessagingError>): Effect.Effect<void, MessagingError> => {
    if (Exit.isSuccess(exit)) {
      inFlight.splice(inFlight.indexOf(settle), 1)
      return Effect.void
    }
    const error = Cause.findErrorOption(exit.cause)
    if (Cause.hasInterrupts(exit.cause) || Cause.hasDies(exit.cause) || Option.isNone(error)) {
      return Effect.failCause(exit.cause)
    }
    inFlight.splice(inFlight.indexOf(settle), 1)
    const { message } = settle
    return Effect.logWarning(`Could not settle message ${message.id} on ${message.queue}: ${error.value.message}`)
  }
  const waitFor = (settle: Settle): Effect.Effect<void, MessagingError> => {
    const exit = settle.fiber.pollUnsafe()
    return exit === undefined
      ? Effect.flatMap(Fiber.await(settle.fiber), (exit) => ended(settle, exit))
      : ended(settle, exit)
  }

  // Synchronous up to its answer: no step between the fork and its record in which an
  // interruption could leave the message held by nobody.
  const handOff = (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) => {
    const started = { message, fiber: fork(settle) }
    inFlight.push(started)
    const exit = started.fiber.pollUnsafe()
    const own = exit === undefined ? Effect.void : ended(started, exit)
    return inFlight.length < depth ? own : Effect.andThen(own, waitFor(inFlight[0]!))
  }

  const drain = Effect.suspend(() =>
    inFlight.length === 0 ? Effect.void : Effect.forEach([...inFlight], waitFor, { discard: true })
  )

  const unsettled = Effect.suspend(() =>
    Effect.map(
      Effect.forEach(inFlight, (settle) => Fiber.interrupt(settle.fiber), { discard: true }),
      () => {
        const messages = inFlight.filter((settle) => {
          const exit = settle.fiber.pollUnsafe()
          return exit === undefined || Exit.isFailure(exit)
        }).map((settle) => settle.message)
        inFlight.length = 0
        return messages
      }
    )
  )

  return { handOff, drain, isEmpty: () => inFlight.length === 0, unsettled }
}
