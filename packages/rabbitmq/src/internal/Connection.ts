/**
 * The provider's one connection and its recovery. A supervisor fiber waits
 * for the live link to close, reports `Degraded`, reconnects on the
 * configured Schedule, lets the provider redeclare its topology, then reports
 * `Reconnected`. When the schedule gives up the state is `Down`: operations
 * fail at once with `ConnectionError` and wake the supervisor for another
 * round, so an application that retries later finds the broker again.
 */
import { Deferred, Effect, Latch, Predicate, Stream, SubscriptionRef } from "effect"
import { MessageNotification, MessagingError } from "@conveyor/core"
import { provider } from "./errors.ts"
import * as Link from "./Link.ts"

type State =
  | { readonly _tag: "Connecting" }
  | { readonly _tag: "Open"; readonly link: Link.Link }
  | { readonly _tag: "Down"; readonly error: MessagingError.ConnectionError }
  | { readonly _tag: "Closed" }

export interface Connection {
  /** The live link; waits while reconnecting. */
  readonly current: Effect.Effect<Link.Link, MessagingError.ConnectionError>
  readonly health: SubscriptionRef.SubscriptionRef<MessageNotification.PushHealth>
}

const closedError = new MessagingError.ConnectionError({ provider, message: "The RabbitMQ provider is closed" })

export const make = (
  settings: Link.LinkSettings,
  /** Runs on every new link before anyone else sees it (redeclaring topology). */
  onReconnect: (link: Link.Link) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const first = yield* Link.open(settings)
    const state = yield* SubscriptionRef.make<State>({ _tag: "Open", link: first })
    const health = yield* SubscriptionRef.make<MessageNotification.PushHealth>(
      MessageNotification.PushHealth.Connected()
    )
    const wake = yield* Latch.make(false)

    const recover = (lost: Link.Link): Effect.Effect<Link.Link> =>
      Effect.gen(function*() {
        const reason = yield* Deferred.await(lost.closed)
        yield* SubscriptionRef.set(health, MessageNotification.PushHealth.Degraded({ reason }))
        yield* SubscriptionRef.set(state, { _tag: "Connecting" })
        while (true) {
          const next = yield* Effect.result(Link.open(settings))
          if (next._tag === "Success") {
            yield* onReconnect(next.success)
            yield* SubscriptionRef.set(state, { _tag: "Open", link: next.success })
            yield* SubscriptionRef.set(health, MessageNotification.PushHealth.Reconnected())
            return next.success
          }
          yield* Effect.logWarning(next.failure.message)
          yield* wake.close
          yield* SubscriptionRef.set(state, { _tag: "Down", error: next.failure })
          yield* wake.await
          yield* SubscriptionRef.set(state, { _tag: "Connecting" })
        }
      })

    // Registered before the supervisor is forked, so it runs after the supervisor is interrupted.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const last = yield* SubscriptionRef.get(state)
        yield* SubscriptionRef.set(state, { _tag: "Closed" })
        if (last._tag === "Open") yield* Link.close(last.link)
      })
    )
    const supervise = (link: Link.Link): Effect.Effect<never> => Effect.flatMap(recover(link), supervise)
    yield* Effect.forkScoped(supervise(first))

    const settle = (s: State): Effect.Effect<Link.Link, MessagingError.ConnectionError> | undefined => {
      switch (s._tag) {
        case "Open":
          return s.link.alive ? Effect.succeed(s.link) : undefined
        case "Down":
          wake.openUnsafe()
          return Effect.fail(s.error)
        case "Closed":
          return Effect.fail(closedError)
        case "Connecting":
          return undefined
      }
    }

    const current: Effect.Effect<Link.Link, MessagingError.ConnectionError> = Effect.suspend(() =>
      settle(SubscriptionRef.getUnsafe(state)) ??
        SubscriptionRef.changes(state).pipe(
          Stream.map(settle),
          Stream.filter(Predicate.isNotUndefined),
          Stream.runHead,
          Effect.flatMap((found) => found._tag === "Some" ? found.value : Effect.fail(closedError))
        )
    )

    return { current, health } satisfies Connection
  })
