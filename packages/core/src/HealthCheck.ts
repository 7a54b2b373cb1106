/**
 * The `healthCheck` every provider gives: one round trip to its server, timed on `Clock` and
 * bounded, so it answers promptly and never fails — problems are reported in the value.
 */
import { Clock, Duration, Effect } from "effect"
import type { PushHealth } from "./MessageNotification.ts"
import type { HealthReport } from "./Messaging.ts"
import { ConnectionError } from "./MessagingError.ts"

const timeout = Duration.seconds(5)

/** `roundTrip` is the cheapest call that proves the server answers (`SELECT 1`, `PING`, …). */
export const probe = <E extends { readonly message: string }>(options: {
  readonly provider: string
  /** How the server is called in a report that it did not answer, e.g. "PostgreSQL". */
  readonly server: string
  readonly roundTrip: Effect.Effect<unknown, E>
  readonly push: Effect.Effect<PushHealth["_tag"]>
}): Effect.Effect<HealthReport> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const answer = yield* options.roundTrip.pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(new ConnectionError({
            provider: options.provider,
            message: `${options.server} did not answer within ${Duration.format(timeout)}`
          }))
      }),
      Effect.result
    )
    const push = yield* options.push
    const latencyMs = (yield* Clock.currentTimeMillis) - started
    return answer._tag === "Success"
      ? { provider: options.provider, healthy: true, latencyMs, push }
      : { provider: options.provider, healthy: false, latencyMs, push, detail: answer.failure.message }
  })
