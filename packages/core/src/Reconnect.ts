/**
 * Riding out a lost connection, the same way on every provider: an operation that failed
 * with `ConnectionError` is tried again on the provider's reconnect schedule, each attempt
 * awaiting the live connection. Nothing extra happens when the first try works.
 */
import { Duration, Effect, Schedule } from "effect"
import type { MessagingError } from "./MessagingError.ts"

/** Exponential from 100 ms, capped at 5 s, jittered, 10 retries (~25 s). */
export const defaultSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5)))),
  Schedule.jittered,
  Schedule.upTo({ times: 10 })
)

/** `effect`, retried on `schedule` while it fails with `ConnectionError`; other errors pass through. */
export const retrying = (schedule: Schedule.Schedule<unknown, unknown>) =>
<A>(effect: Effect.Effect<A, MessagingError>): Effect.Effect<A, MessagingError> =>
  Effect.catch(effect, (error) =>
    error._tag === "ConnectionError"
      ? Effect.retry(effect, { schedule, while: (e) => e._tag === "ConnectionError" })
      : Effect.fail(error))
