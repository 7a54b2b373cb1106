/**
 * The registrations of what subscriptions read (claimScripts.register): a
 * read hands its entries over and goes on; one fiber of the layer's sends
 * every registration handed over since its last turn, each its own script
 * call, all at once. The fiber outlives the subscriptions: a deadline must be
 * written even when the subscription that read the entries ends meanwhile. A
 * registration lost with the layer (or its connection) is the janitor's
 * (claimScripts.claim). A fiber forked per read cost more of W1's way from
 * the reply to the handler than the rest of the subscription's steps.
 */
import type { MessagingError, QueueName } from "@conveyor/core"
import { Effect, Queue, type Scope } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { fromRedis } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./claimScripts.ts"

export interface Registration {
  readonly queue: QueueName.QueueName
  readonly visibilityMs: number
  readonly entries: ReadonlyArray<string>
}

export interface Registrar {
  /** Registers `entries` of `queue`, from the registrar's next turn: after the caller's. */
  readonly register: (registration: Registration) => void
}

export const make = (
  redis: EffectRedis.Redis["Service"],
  keys: Keys,
  group: string,
  retryConnection: <A>(effect: Effect.Effect<A, MessagingError.MessagingError>) => Effect.Effect<A, MessagingError.MessagingError>
): Effect.Effect<Registrar, never, Scope.Scope> =>
  Effect.gen(function*() {
    const handed = yield* Queue.unbounded<Registration>()
    const one = ({ entries, queue, visibilityMs }: Registration) =>
      retryConnection(
        redis.eval(Scripts.register)(keys.of(queue), group, visibilityMs, entries).pipe(Effect.mapError(fromRedis("subscribe", queue)))
      ).pipe(
        Effect.catch((error) =>
          Effect.logWarning(`Could not register ${entries.length} deliveries of ${queue} (the janitor will): ${error.message}`)
        )
      )
    yield* Effect.forkScoped(Effect.forever(
      Effect.flatMap(Queue.takeAll(handed), (registrations) =>
        Effect.forEach(registrations, one, { concurrency: registrations.length > 1 ? "unbounded" : 1, discard: true }))
    ))
    return { register: (registration) => Queue.offerUnsafe(handed, registration) }
  })
