import { Clock, Duration, Effect, Option, Pull, Schedule } from "effect"

/** The delay before retry `attempt`, or none once the schedule is exhausted. */
export const backoff = (schedule: Schedule.Schedule<unknown>, attempt: number) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    const now = yield* Clock.currentTimeMillis
    let delay = Option.none<Duration.Duration>()
    for (let i = 0; i < attempt; i++) {
      const next = yield* step(now, undefined).pipe(
        Effect.map(([, duration]) => Option.some(duration)),
        Pull.catchDone(() => Effect.succeed(Option.none<Duration.Duration>()))
      )
      if (Option.isNone(next)) return next
      delay = next
    }
    return delay
  })

