/**
 * A worker's settles in flight (its acks, nacks and dead-letter moves), off
 * its critical path: the worker hands the settle of the message it just
 * handled over and takes its next message while that settle is on the wire;
 * it waits only when it hands off a fifth while four still run, and then for
 * the oldest alone. A worker therefore holds at most four messages — one
 * handled and three settling, or four settling. An ack goes with every other
 * worker's through the consumer's `Acks` (internal/acks.ts: one round trip per
 * batch); a nack or a dead-letter move, rare, is a fiber of its own. Waiting
 * for each settle before taking the next message cost a settle round trip per
 * message per worker: ~95 % of a worker's time on Redis and PGMQ W2 @16.
 */
import { Cause, type Context, Effect, Exit, Fiber, Option } from "effect"
import type { QueuedMessage } from "../Message.ts"
import type { MessagingError } from "../MessagingError.ts"
import type { Acks } from "./acks.ts"

/** A settle on its way: a fiber of its own (`handOff`), or an ack gathered with others (`Ticket`). */
interface Settle {
  readonly message: QueuedMessage
  /** Its exit, once it has one. */
  poll(): Exit.Exit<void, MessagingError> | undefined
  readonly await: Effect.Effect<Exit.Exit<void, MessagingError>>
  /** Cuts it short at shutdown, where it can be. */
  readonly interrupt: Effect.Effect<void>
}

export interface Settles {
  /**
   * Starts `settle` of `message` at once, in a fiber of its own — the worker no longer holds
   * the message, the settles do — and answers what remains: waiting for the older settle if it
   * still runs. A settle that failed is logged; one interrupted or dying fails the worker with
   * its cause and stays for `unsettled`.
   */
  readonly handOff: (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) => Effect.Effect<void, MessagingError>
  /** `handOff` of the ack of `message`, which goes out with the other workers' acks. */
  readonly handOffAck: (message: QueuedMessage) => Effect.Effect<void, MessagingError>
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

/**
 * At most four settles in flight: a gathered ack returns with its whole round trip, and at two
 * the workers waited on it (DESIGN §4).
 */
const depth = 4

/** The settles of one worker, run in the worker's `context`; its acks go through `acks`. */
export const make = (context: Context.Context<never>, acks: Acks): Settles => {
  // Oldest first; a settle leaves only once it ended in success or a logged failure.
  const inFlight: Array<Settle> = []
  // A settle of its own is a fiber, started at once: one that needs no round trip (in memory)
  // ends before `handOff` returns, without a scheduler turn. Not a child of the worker: the
  // worker waits for them (`drain`) or interrupts them (`unsettled`) itself.
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
    const exit = settle.poll()
    return exit === undefined ? Effect.flatMap(settle.await, (exit) => ended(settle, exit)) : ended(settle, exit)
  }

  // Synchronous up to its answer: no step between the hand-over and its record in which an
  // interruption could leave the message held by nobody.
  const started = (settle: Settle) => {
    inFlight.push(settle)
    const exit = settle.poll()
    const own = exit === undefined ? undefined : ended(settle, exit)
    if (inFlight.length < depth) return own ?? Effect.void
    return own === undefined ? waitFor(inFlight[0]!) : Effect.andThen(own, waitFor(inFlight[0]!))
  }

  const handOff = (message: QueuedMessage, settle: Effect.Effect<void, MessagingError>) => {
    const fiber = fork(settle)
    return started({
      message,
      poll: () => fiber.pollUnsafe(),
      await: Fiber.await(fiber),
      interrupt: Fiber.interrupt(fiber)
    })
  }

  const handOffAck = (message: QueuedMessage) => started(acks.ack(message))

  const drain = Effect.suspend(() =>
    inFlight.length === 0 ? Effect.void : Effect.forEach([...inFlight], waitFor, { discard: true })
  )

  const unsettled = Effect.suspend(() =>
    Effect.map(
      Effect.forEach(inFlight, (settle) => settle.interrupt, { discard: true }),
      () => {
        const messages = inFlight.filter((settle) => {
          const exit = settle.poll()
          return exit === undefined || Exit.isFailure(exit)
        }).map((settle) => settle.message)
        inFlight.length = 0
        return messages
      }
    )
  )

  return { handOff, handOffAck, drain, isEmpty: () => inFlight.length === 0, unsettled }
}
