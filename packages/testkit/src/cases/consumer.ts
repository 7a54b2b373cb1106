import { Consumer, Messaging, QueueName } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Schedule } from "effect"
import type { Context } from "../Conformance.ts"
import { freshQueue, freshQueues } from "../Harness.ts"

export const consumer = ({ h, test }: Context) => {
  test("concurrent publishers and consumers lose nothing", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const queues = yield* freshQueues(3)
      const handled = new Map<string, number>()
      const consumers = yield* Effect.forEach(
        [0, 1, 2, 3],
        () =>
          Consumer.run(queues, (message) =>
            Effect.sync(() => {
              const key = String(message.payload)
              handled.set(key, (handled.get(key) ?? 0) + 1)
            }), { concurrency: 4, batchSize: 8, visibilityTimeout: "30 seconds" }).pipe(Effect.forkChild)
      )
      yield* Effect.yieldNow
      const publishers = 8
      const perPublisher = 40
      yield* Effect.forEach(
        Array.from({ length: publishers }, (_, p) => p),
        (p) =>
          Effect.forEach(Array.from({ length: perPublisher / 4 }, (_, b) => b), (b) => {
            const payloads = Array.from({ length: 4 }, (_, i) => `${p}-${b * 4 + i}`)
            const q = queues[(p + b) % queues.length]!
            return b % 2 === 0
              ? m.sendBatch(q, payloads)
              : Effect.forEach(payloads, (payload) => m.send(q, payload))
          }),
        { concurrency: "unbounded" }
      )
      const total = publishers * perPublisher
      yield* h.eventually(`all ${total} messages handled`, Effect.sync(() => handled.size === total), "15 seconds")
      yield* Effect.forEach(consumers, Fiber.interrupt)
      for (const q of queues) assert.strictEqual((yield* m.stats(q)).depth, 0)
    }))

  test("a consumer closed and reopened loses nothing and waits for no timeout", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const handled = new Set<unknown>()
      const consume = Consumer.run(
        [q],
        (message) => Effect.andThen(h.advance("5 millis"), Effect.sync(() => handled.add(message.payload))),
        { concurrency: 2, batchSize: 8, visibilityTimeout: "60 seconds", shutdownGrace: "2 seconds" }
      )
      const total = 60
      yield* m.sendBatch(q, Array.from({ length: total }, (_, n) => n))
      const first = yield* Effect.forkChild(consume)
      yield* Effect.yieldNow
      yield* h.eventually("the first consumer makes progress", Effect.sync(() => handled.size >= 10), "10 seconds")
      yield* Fiber.interrupt(first)
      assert.isBelow(handled.size, total, "the first consumer was stopped mid-way")
      const second = yield* Effect.forkChild(consume)
      yield* Effect.yieldNow
      // Far less than the 60 s visibility timeout: unstarted claims were returned at shutdown.
      yield* h.eventually("the reopened consumer handles the rest", Effect.sync(() => handled.size === total), "10 seconds").pipe(
        // In flight here means claims nobody holds: lost until their visibility timeout.
        Effect.catch((error) =>
          Effect.flatMap(m.stats(q), (stats) =>
            Effect.fail(new Error(`${error.message}; handled ${handled.size} of ${total}; queue ${JSON.stringify(stats)}`)))
        )
      )
      yield* Fiber.interrupt(second)
    }))

  test("Consumer.run retries a failure after its backoff delay and dead-letters a poison message (kept in the queue without deadLetter)", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const attempts = new Map<string, Array<number>>()
      const backoffMs = 1000
      const fiber = yield* Consumer.run(
        [q],
        (message) =>
          Effect.gen(function*() {
            const kind = String(message.payload)
            const at = attempts.get(kind) ?? []
            at.push(yield* Clock.currentTimeMillis)
            attempts.set(kind, at)
            if (kind === "poison" || (kind === "flaky" && at.length === 1)) return yield* Effect.fail(`refused ${kind}`)
          }),
        {
          maxReceives: 3,
          retryBackoff: Schedule.spaced(Duration.millis(backoffMs)),
          visibilityTimeout: "30 seconds",
          poll: Schedule.spaced("100 millis"),
          mode: "Hybrid"
        }
      ).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      yield* m.sendBatch(q, ["fine", "flaky", "poison"])
      yield* h.eventually(
        "flaky succeeds on its second delivery, poison is tried three times",
        Effect.sync(() => attempts.get("flaky")?.length === 2 && attempts.get("poison")?.length === 3),
        "10 seconds"
      )
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(attempts.get("fine")?.length, 1)
      // The retry waits its backoff: not sooner, and not much later than the provider's fallback poll
      // (a nack with a delay is not announced where push announces sends only).
      const latest = backoffMs + Duration.toMillis(m.capabilities.fallbackPollingInterval) + 1000
      for (const kind of ["flaky", "poison"]) {
        const at = attempts.get(kind)!
        for (const [i, gap] of at.slice(1).map((t, i) => [i, t - at[i]!] as const)) {
          assert.isAtLeast(gap, backoffMs, `${kind}: retry ${i + 1} waited its backoff`)
          assert.isAtMost(gap, latest, `${kind}: retry ${i + 1} came once due`)
        }
      }
      if (!m.capabilities.deadLetter) {
        // Without a dead-letter queue the poison message is kept, never dropped.
        assert.strictEqual((yield* m.stats(q)).depth, 1)
        return
      }
      let dead: ReadonlyArray<unknown> = []
      yield* h.eventually(
        "poison is in the dead-letter queue",
        Effect.map(m.receive(QueueName.deadLetter(q), { max: 10, visibilityTimeout: "30 seconds" }), (received) => {
          dead = received.map((message) => message.payload)
          return dead.length > 0
        })
      )
      assert.deepStrictEqual(dead, ["poison"])
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }))
}
