/**
 * A consumer's acks, gathered across its workers and sent with
 * `Messaging.ackAll`: a worker hands over the message it handled and goes on
 * (internal/settles.ts); the acks handed over while a round trip of acks is
 * on the wire go out together in the next, at most `lanes` round trips at a
 * time. One round trip and a few runtime steps per batch, where an ack of its
 * own cost a fiber and a request per message: W2@16 on Redis drains ~1.35× as
 * fast (DESIGN §4).
 */
import { type Array as Arr, Deferred, Effect, Exit, Queue, type Scope } from "effect"
import type { QueuedMessage } from "../Message.ts"
import type { Messaging } from "../Messaging.ts"
import type { MessagingError } from "../MessagingError.ts"

/**
 * An ack handed over: its exit once its round trip answered. A `Deferred` to wait on is made
 * only for a worker that waits before then (most never do).
 */
export class Ticket {
  exit: Exit.Exit<void, MessagingError> | undefined = undefined
  readonly message: QueuedMessage
  private done: Deferred.Deferred<void, MessagingError> | undefined = undefined
  constructor(message: QueuedMessage) {
    this.message = message
  }
  poll() {
    return this.exit
  }
  get await(): Effect.Effect<Exit.Exit<void, MessagingError>> {
    if (this.exit !== undefined) return Effect.succeed(this.exit)
    this.done ??= Deferred.makeUnsafe()
    return Effect.exit(Deferred.await(this.done))
  }
  /** Nothing to cut short: the round trip is shared with other workers' acks, and runs on. */
  get interrupt() {
    return Effect.void
  }
  complete(exit: Exit.Exit<void, MessagingError>) {
    this.exit = exit
    if (this.done !== undefined) Deferred.doneUnsafe(this.done, exit)
  }
}

export interface Acks {
  /** Hands the ack of `message` over; it goes out with the next round trip. */
  readonly ack: (message: QueuedMessage) => Ticket
}

/** Two lanes: the next round trip fills while one is on the wire, and goes out as soon as it is full or the wire is free. */
const lanes = 2

const missing: Exit.Exit<void, MessagingError> = Exit.die(new Error("ackAll answered fewer results than receipts"))

export const make = (messaging: Messaging["Service"]): Effect.Effect<Acks, never, Scope.Scope> =>
  Effect.gen(function*() {
    const handed = yield* Queue.unbounded<Ticket>()
    // Added before the lanes start, so it runs after they are interrupted: nothing waits for ever.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.clear(handed), (left) => Effect.sync(() => left.forEach((ticket) => ticket.complete(Exit.interrupt())))))

    const answer = (tickets: Arr.NonEmptyReadonlyArray<Ticket>) => (exit: Exit.Exit<ReadonlyArray<Exit.Exit<void, MessagingError>>>) =>
      Effect.sync(() =>
        tickets.forEach((ticket, i) => ticket.complete(Exit.isSuccess(exit) ? exit.value[i] ?? missing : Exit.failCause(exit.cause)))
      )
    // Uninterruptible from the take to the answer's registration: no ticket taken and never answered.
    const lane = Effect.forever(Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(Queue.takeAll(handed)), (tickets) =>
        Effect.onExit(restore(messaging.ackAll(tickets.map((ticket) => ticket.message.receipt))), answer(tickets)))
    ))
    for (let i = 0; i < lanes; i++) yield* Effect.forkScoped(lane)

    return {
      ack: (message) => {
        const ticket = new Ticket(message)
        Queue.offerUnsafe(handed, ticket)
        return ticket
      }
    }
  })
