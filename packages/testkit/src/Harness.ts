/**
 * Time and queue helpers that let one suite run on virtual time (TestClock,
 * in-memory provider) and on real time (server providers).
 */
import { Messaging, QueueName } from "@conveyor/core"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"

export type ClockMode = "virtual" | "live"

export interface Harness {
  readonly clock: ClockMode
  /** Lets `duration` pass: TestClock.adjust on virtual time, a real sleep otherwise. */
  readonly advance: (duration: Duration.Input) => Effect.Effect<void>
  /** Retries `check` until it holds or `within` has passed, then fails with `what`. */
  readonly eventually: <E, R>(
    what: string,
    check: Effect.Effect<boolean, E, R>,
    within?: Duration.Input
  ) => Effect.Effect<void, E | Error, R>
}

export const make = (clock: ClockMode): Harness => {
  const advance = (duration: Duration.Input) =>
    clock === "virtual"
      ? Effect.andThen(TestClock.adjust(duration), Effect.yieldNow)
      : Effect.sleep(duration)
  const step = Duration.millis(clock === "virtual" ? 100 : 25)
  const eventually: Harness["eventually"] = (what, check, within = "5 seconds") =>
    Effect.gen(function*() {
      const limit = Duration.toMillis(Duration.fromInputUnsafe(within))
      for (let waited = 0; ; waited += Duration.toMillis(step)) {
        // Give forked consumers a chance to run before each look.
        for (let i = 0; i < 5; i++) yield* Effect.yieldNow
        if (yield* check) return
        if (waited >= limit) return yield* Effect.fail(new Error(`Not within ${Duration.format(Duration.fromInputUnsafe(within))}: ${what}`))
        yield* advance(step)
      }
    })
  return { clock, advance, eventually }
}

const randomTag = () => Math.random().toString(36).slice(2, 10).padEnd(8, "0")

/**
 * Creates `count` fresh queues with unique names (safe to run suites in
 * parallel and to re-run) and deletes them when the test's scope closes.
 */
export const freshQueues = (count: number) =>
  Effect.gen(function*() {
    const messaging = yield* Messaging.Messaging
    const tag = randomTag()
    const queues = Array.from({ length: count }, (_, i) => QueueName.makeUnsafe(`ck_${tag}_${i}`))
    for (const queue of queues) {
      yield* messaging.ensureQueue(queue)
      yield* Effect.addFinalizer(() => Effect.ignore(messaging.deleteQueue(queue)))
    }
    return queues
  })

export const freshQueue = Effect.map(freshQueues(1), (queues) => queues[0]!)
