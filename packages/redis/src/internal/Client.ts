/**
 * The node-redis client behind `Redis.layer`: `NodeRedis.layer` (the shared
 * connection and the pool behind `reserve`), connected on the reconnect
 * schedule. A refused login is not retried. The error names the server
 * (without the password) and why it failed.
 *
 * Once connected, node-redis reconnects the shared connection by itself, with
 * our strategy: exponential from 50 ms, at most 2 s apart, jittered, and
 * never giving up (NodeRedis's default stops for good on a connect timeout,
 * which would leave the provider without a connection until restarted).
 */
import { NodeRedis } from "@effect/platform-node"
import { MessagingError } from "@conveyor/core"
import { Context, Effect, Exit, Layer, Redacted, Ref, type Schedule, Scope } from "effect"
import * as EffectRedis from "effect/persistence/Redis"
import { ErrorReply, ReconnectStrategyError } from "redis"
import { provider } from "./Codec.ts"

export interface ClientSettings {
  readonly url: Redacted.Redacted<string>
  readonly name: string
  readonly maxReserved: number
  readonly reconnect: Schedule.Schedule<unknown, unknown>
}

const describeUrl = (url: string) => {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || "6379"}`
  } catch {
    return "an unparseable URL"
  }
}

const passwordOf = (url: string) => {
  try {
    return decodeURIComponent(new URL(url).password)
  } catch {
    return ""
  }
}

/** The server answered and refused (wrong password, unknown user): trying again will not help. */
const isPermanent = (cause: unknown) =>
  cause instanceof ErrorReply || (cause instanceof ReconnectStrategyError && cause.originalError instanceof ErrorReply)

export const make = (settings: ClientSettings): Effect.Effect<EffectRedis.Redis["Service"], MessagingError.ConnectionError, Scope.Scope> =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const url = Redacted.value(settings.url)
    const attempts = yield* Ref.make(0)
    // Before the first connection a failure goes back to the attempt (and the schedule) above.
    let connected = false
    const reconnectStrategy = (retries: number, cause: Error) =>
      connected ? Math.min(2 ** retries * 50, 2000) + Math.floor(Math.random() * 200) : cause
    const once = Effect.gen(function*() {
      // Each attempt in a scope of its own: a failed one closes its client at once.
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        NodeRedis.layer({ url, name: settings.name, maxConnections: settings.maxReserved, socket: { reconnectStrategy } }),
        scope
      ).pipe(
        Effect.mapError((error) => error.cause),
        Effect.onError(() => Scope.close(scope, Exit.void)),
        Effect.ensuring(Ref.update(attempts, (n) => n + 1))
      )
      yield* Scope.addFinalizer(outer, Scope.close(scope, Exit.void))
      connected = true
      return Context.get(context, EffectRedis.Redis)
    })
    return yield* once.pipe(
      Effect.retry({ schedule: settings.reconnect, while: (cause) => !isPermanent(cause) }),
      Effect.catch((cause) =>
        Effect.flatMap(Ref.get(attempts), (n) => {
          const password = passwordOf(url)
          const raw = cause instanceof Error ? cause.message : String(cause)
          const reason = password === "" ? raw : raw.split(password).join("***")
          const hint = isPermanent(cause) ? " (check the user and password in the URL)" : ""
          return Effect.fail(
            new MessagingError.ConnectionError({
              provider,
              message: `Could not connect to Redis at ${describeUrl(url)} after ${n} attempt${n === 1 ? "" : "s"}: ${reason}${hint}`
            })
          )
        })
      )
    )
  })
