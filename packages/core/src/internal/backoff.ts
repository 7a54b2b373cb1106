import { Clock, Duration, Effect, Option, Pull, Schedule } from "effect"

/**
 * The delay before retry `attempt` (1, 2, ...), or none once the schedule is
 * exhausted. The retries of one message may run on different consumers, so
 * the schedule is replayed from its start on every call — with the elapsed
 * time advancing by each delay it returns, as if the earlier retries had
 * waited them: a time-bounded schedule (`upTo({ duration })`, `during`) ends
 * as it would under `Effect.retry`.
 */
export const backoff = (schedule: Schedule.Schedule<unknown>, attempt: number) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    let now = yield* Clock.currentTimeMillis
    let delay = Option.none<Duration.Duration>()
    for (let i = 0; i < attempt; i++) {
      const next = yield* step(now, undefined).pipe(
        Effect.map(([, duration]) => Option.some(duration)),
        Pull.catchDone(() => Effect.succeed(Option.none<Duration.Duration>()))
      )
      if (Option.isNone(next)) return next
      delay = next
      now += Duration.toMillis(next.value)
    }
    return delay
  })
