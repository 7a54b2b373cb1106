import { Consumer, type DeploymentMode, Messaging } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import type { Context } from "../Conformance.ts"
import { freshQueue } from "../Harness.ts"

const paths: ReadonlyArray<readonly [string, DeploymentMode.DeploymentMode]> = [
  ["poll", "PollingOnly"],
  ["push (poll where there is none)", "EventDrivenOnly"]
]

export const stream = ({ h, test }: Context) => {
  for (const [path, mode] of paths) {
    test(`Consumer.stream, ${path}: what it emitted is the caller's, what it held unemitted goes back when it ends`, () =>
      Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const q = yield* freshQueue
        const total = 10
        const taking = yield* Consumer.stream([q], { mode, batchSize: 8, visibilityTimeout: "30 seconds" }).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Effect.yieldNow
        if (mode === "PollingOnly") {
          yield* m.sendBatch(q, Array.from({ length: total }, (_, n) => n))
        } else {
          // Sent one by one once the subscription listens, so that push delivers them.
          yield* h.advance("200 millis")
          for (let n = 0; n < total; n++) yield* m.send(q, n)
        }
        yield* h.eventually("the stream emits one message and ends", Effect.sync(() => taking.pollUnsafe() !== undefined), "5 seconds")
        const taken = yield* Fiber.join(taking)
        const [message] = taken
        assert.strictEqual(taken.length, 1)
        // Emitted: the caller's to settle after the stream ended.
        yield* m.ack(message!.receipt)
        // Unemitted: back at once, far sooner than the 30 s visibility timeout.
        const rest = new Set<unknown>()
        yield* h.eventually(
          `the other ${total - 1} messages are claimable again`,
          Effect.gen(function*() {
            for (const again of yield* m.receive(q, { max: total, visibilityTimeout: "30 seconds" })) {
              rest.add(again.payload)
              yield* m.ack(again.receipt)
            }
            return rest.size === total - 1
          }),
          "3 seconds"
        ).pipe(Effect.catch((error) =>
          Effect.flatMap(m.stats(q), (stats) =>
            Effect.fail(new Error(`${error.message}; got back ${[...rest].join(",")}, emitted ${message!.payload}; queue ${JSON.stringify(stats)}`)))
        ))
        assert.isFalse(rest.has(message!.payload), "the emitted message was not handed back")
        assert.strictEqual((yield* m.stats(q)).depth, 0)
      }))
  }
}
