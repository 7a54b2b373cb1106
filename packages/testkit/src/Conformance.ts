/**
 * The conformance suite: the single statement of provider semantics (DESIGN
 * §8). A provider package calls `suite` once with its layer; every test
 * creates its own queues, so suites can run in parallel and re-run.
 */
import type { Messaging } from "@conveyor/core"
import { layer } from "@effect/vitest"
import type { Effect, Layer, Scope } from "effect"
import { badInput } from "./cases/badInput.ts"
import { basics } from "./cases/basics.ts"
import { batching } from "./cases/batching.ts"
import { consumer } from "./cases/consumer.ts"
import { push } from "./cases/push.ts"
import { stream } from "./cases/stream.ts"
import { visibility } from "./cases/visibility.ts"
import * as Harness from "./Harness.ts"

export interface Options {
  /** Shown in the vitest output: `conformance: <name>`. */
  readonly name: string
  readonly layer: Layer.Layer<Messaging.Messaging, unknown>
  /** `virtual` drives time with TestClock (in-memory); servers need `live`. */
  readonly clock: Harness.ClockMode
  /** Whether a single consumer sees each queue's messages in send order (default true). */
  readonly fifo?: boolean
  /**
   * Which tests to register (default `"all"`): `"shared"` leaves out the ones that run `alone`,
   * `"alone"` registers only those — for a file run in a vitest group of its own, so that no
   * other test file competes for the cores while it measures milliseconds.
   */
  readonly part?: "all" | "shared" | "alone"
}

export interface Context {
  /**
   * Registers one test with the suite's per-test time limit. `alone`: not run concurrently
   * with the suite's other tests, for a test that measures latency in milliseconds (the
   * others would share its event loop).
   */
  readonly test: (
    name: string,
    body: () => Effect.Effect<void, unknown, Messaging.Messaging | Scope.Scope>,
    options?: { readonly alone?: boolean }
  ) => void
  readonly h: Harness.Harness
  readonly options: Options
}

// Generous: a live run shares two cores with other suites; `eventually` bounds are the real assertions.
const testTimeoutMs = 60_000

export const suite = (options: Options): void => {
  const h = Harness.make(options.clock)
  // Tests run concurrently on live time, but the suite itself does not: a file running two
  // suites (RabbitMQ classic and quorum) runs them one after the other, so a test that runs
  // `alone` is alone in its process.
  layer(options.layer, {
    timeout: "30 seconds",
    excludeTestServices: options.clock === "live",
    concurrent: false
  })(`conformance: ${options.name}`, (it) => {
    const context: Context = {
      test: (name, body, test) => {
        const alone = test?.alone === true
        const part = options.part ?? "all"
        if (part === "all" || (part === "alone") === alone) {
          it.effect(name, body, { timeout: testTimeoutMs, concurrent: options.clock === "live" && !alone })
        }
      },
      h,
      options
    }
    basics(context)
    badInput(context)
    visibility(context)
    push(context)
    consumer(context)
    stream(context)
    batching(context)
  })
}
