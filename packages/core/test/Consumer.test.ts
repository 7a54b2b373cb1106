import { Consumer, InMemory, Messaging, Observability, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Fiber, Metric, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"

const q = QueueName.makeUnsafe("work")
const long = { max: 100, visibilityTimeout: "30 seconds" } as const

const setup = Effect.flatMap(Messaging.Messaging, (m) => Effect.as(m.ensureQueue(q), m))
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

describe("Consumer.run", () => {
  it.effect("waits the backoff schedule between attempts", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const attempts: Array<number> = []
      const fiber = yield* Consumer.run([q], () =>
        Effect.andThen(
          Effect.clockWith((clock) => Effect.sync(() => attempts.push(clock.currentTimeMillisUnsafe()))),
          Effect.fail("not yet")
        ), { maxReceives: 3, retryBackoff: Schedule.exponential("10 seconds") }).pipe(Effect.forkChild)
      yield* settle
      yield* m.send(q, "job")
      yield* settle
      assert.strictEqual(attempts.length, 1)
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(attempts.length, 1, "not before the first delay")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(attempts.length, 2)
      yield* TestClock.adjust("19 seconds")
      assert.strictEqual(attempts.length, 2, "the second delay doubles")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(attempts.map((t) => t - attempts[0]!), [0, 10_000, 30_000])
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* m.stats(q)).deadLettered, 1, "the third failure dead-letters")
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("an exhausted backoff schedule dead-letters before maxReceives", () =>
    Effect.gen(function*() {
      const m = yield* setup
      let attempts = 0
      const fiber = yield* Consumer.run([q], () => Effect.andThen(Effect.sync(() => attempts++), Effect.fail("no")), {
        maxReceives: 100,
        retryBackoff: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 1 }))
      }).pipe(Effect.forkChild)
      yield* settle
      yield* m.send(q, "job")
      yield* TestClock.adjust("1 minute")
      yield* settle
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(attempts, 2)
      assert.strictEqual((yield* m.stats(q)).deadLettered, 1)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("every kind of ending schedule dead-letters when it ends", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, Schedule.Schedule<unknown>, (gaps: ReadonlyArray<number>) => void]> = [
        // Steps at elapsed 0, 1, 2 and 3 s are within the bound, the one at 4 s is not.
        ["time-bounded", Schedule.spaced("1 second").pipe(Schedule.upTo({ duration: "3 seconds" })), (gaps) =>
          assert.deepStrictEqual(gaps, [1000, 1000, 1000, 1000])],
        ["count-bounded", Schedule.exponential("1 second", 2).pipe(Schedule.upTo({ times: 3 })), (gaps) =>
          assert.deepStrictEqual(gaps, [1000, 2000, 4000])],
        ["jittered and time-bounded", Schedule.exponential("1 second").pipe(Schedule.jittered, Schedule.upTo({ duration: "10 seconds" })), (gaps) => {
          assert.isAtLeast(gaps.length, 3)
          assert.isAtMost(gaps.reduce((a, b) => a + b, 0) - gaps.at(-1)!, 10_000, "the last retry began within the bound")
        }]
      ]
      for (const [name, retryBackoff, check] of cases) {
        const m = yield* setup
        yield* m.purgeQueue(QueueName.deadLetter(q))
        const attempts: Array<number> = []
        const fiber = yield* Consumer.run([q], () =>
          Effect.andThen(
            Effect.clockWith((clock) => Effect.sync(() => attempts.push(clock.currentTimeMillisUnsafe()))),
            Effect.fail("no")
          ), { maxReceives: 100, retryBackoff }).pipe(Effect.forkChild)
        yield* settle
        yield* m.send(q, name)
        for (let i = 0; i < 120; i++) {
          yield* TestClock.adjust("500 millis")
          yield* settle
        }
        yield* Fiber.interrupt(fiber)
        check(attempts.slice(1).map((t, i) => t - attempts[i]!))
        assert.strictEqual((yield* m.stats(q)).deadLettered, 1, `${name}: dead-lettered when the schedule ended`)
        assert.strictEqual((yield* m.stats(q)).depth, 0, name)
      }
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("a handler that dies is retried like a failure and the consumer lives on", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const seen: Array<unknown> = []
      const fiber = yield* Consumer.run([q], (message) =>
        Effect.suspend(() => {
          seen.push(message.payload)
          return message.payload === "boom" && message.receiveCount === 1 ? Effect.die("kaboom") : Effect.void
        }), { retryBackoff: Schedule.spaced("1 second") }).pipe(Effect.forkChild)
      yield* settle
      yield* m.sendBatch(q, ["boom", "fine"])
      yield* TestClock.adjust("2 seconds")
      yield* settle
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual([...seen].sort(), ["boom", "boom", "fine"])
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("an idle worker starts its handler in the step that admits its delivery", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const started: Array<unknown> = []
      const fiber = yield* Consumer.run([q], (message) => Effect.sync(() => started.push(message.payload))).pipe(
        Effect.forkChild
      )
      yield* settle
      // The in-memory subscription is woken inside the send, so with no scheduler round between
      // a delivery and its waiting worker, the handler has started by the time the send returns.
      yield* m.send(q, "now")
      assert.deepStrictEqual(started, ["now"])
      yield* m.sendBatch(q, ["a", "b"])
      assert.deepStrictEqual(started, ["now", "a", "b"])
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("a message already past maxReceives is dead-lettered without running the handler", () =>
    Effect.gen(function*() {
      const m = yield* setup
      yield* m.send(q, "tired")
      for (let i = 0; i < 3; i++) {
        yield* m.receive(q, { max: 1, visibilityTimeout: "1 second" })
        yield* TestClock.adjust("2 seconds")
      }
      let ran = 0
      const fiber = yield* Consumer.run([q], () => Effect.sync(() => ran++), { maxReceives: 3 }).pipe(Effect.forkChild)
      yield* settle
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(ran, 0)
      assert.strictEqual((yield* m.stats(q)).deadLettered, 1)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("runs at most `concurrency` handlers and claims no further than its buffers", () =>
    Effect.gen(function*() {
      const m = yield* setup
      let running = 0
      let peak = 0
      let peakInFlight = 0
      const fiber = yield* Consumer.run([q], () =>
        Effect.gen(function*() {
          peak = Math.max(peak, ++running)
          peakInFlight = Math.max(peakInFlight, (yield* m.stats(q)).inFlight ?? 0)
          yield* Effect.sleep("1 second")
          running--
        }), { concurrency: 3, batchSize: 4 }).pipe(Effect.forkChild)
      yield* settle
      yield* m.sendBatch(q, Array.from({ length: 60 }, (_, i) => i))
      for (let i = 0; i < 25; i++) {
        yield* TestClock.adjust("1 second")
        yield* settle
      }
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(peak, 3)
      // concurrency + 3 × batchSize (k = 1 claim in flight): the bound documented on Consumer.run
      // less its `concurrency` settles in flight — none here, an in-memory ack ends at once.
      assert.isAtMost(peakInFlight, 3 + 3 * 4)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("keeps enough claims in flight for its concurrency, within the documented bound", () =>
    Effect.gen(function*() {
      const real = yield* setup
      let receiving = 0
      let peakReceiving = 0
      // Each receive takes a round trip, as it does on a server.
      const slow: Messaging.Messaging["Service"] = {
        ...real,
        receive: (queue, options) =>
          Effect.acquireUseRelease(
            Effect.sync(() => peakReceiving = Math.max(peakReceiving, ++receiving)),
            () => Effect.andThen(Effect.sleep("10 millis"), real.receive(queue, options)),
            () => Effect.sync(() => receiving--)
          )
      }
      let running = 0
      let peak = 0
      let peakInFlight = 0
      yield* real.sendBatch(q, Array.from({ length: 200 }, (_, i) => i))
      const fiber = yield* Consumer.run([q], () =>
        Effect.gen(function*() {
          peak = Math.max(peak, ++running)
          peakInFlight = Math.max(peakInFlight, (yield* real.stats(q)).inFlight ?? 0)
          yield* Effect.sleep("100 millis")
          running--
        }), { concurrency: 16, batchSize: 4, mode: "PollingOnly" }).pipe(
        Effect.provideService(Messaging.Messaging, slow),
        Effect.forkChild
      )
      for (let i = 0; i < 300 && (yield* real.stats(q)).depth > 0; i++) {
        yield* TestClock.adjust("10 millis")
        yield* settle
      }
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* real.stats(q)).depth, 0)
      assert.strictEqual(peak, 16, "every handler got work")
      // ceil(concurrency / batchSize) claims in flight, never more.
      assert.strictEqual(peakReceiving, 4)
      // concurrency + (claimsInFlight + 2) × batchSize: the bound documented on Consumer.run less
      // its settles in flight — none seen here: an in-memory ack's round trip ends in the
      // scheduler round it was handed over in, long before the next handler's 100 ms are up.
      assert.isAtMost(peakInFlight, 16 + (4 + 2) * 4)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("shutdown returns unstarted claims at once and lets running handlers finish", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const finished: Array<unknown> = []
      const fiber = yield* Consumer.run([q], (message) =>
        Effect.andThen(Effect.sleep("2 seconds"), Effect.sync(() => finished.push(message.payload))), {
        concurrency: 2,
        batchSize: 8,
        visibilityTimeout: "10 minutes",
        shutdownGrace: "5 seconds"
      }).pipe(Effect.forkChild)
      yield* settle
      yield* m.sendBatch(q, Array.from({ length: 20 }, (_, i) => i))
      yield* settle
      assert.strictEqual((yield* m.stats(q)).inFlight, 20 - (yield* m.stats(q)).visible)
      const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* settle
      const during = yield* m.stats(q)
      assert.strictEqual(during.inFlight, 2, "only the two running handlers still hold claims")
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(stopping)
      assert.deepStrictEqual(finished, [0, 1])
      const after = yield* m.stats(q)
      assert.strictEqual(after.depth, 18)
      assert.strictEqual(after.visible, 18)
    }).pipe(Effect.provide(InMemory.layer())))

  // Every ack takes `ackTime` on the TestClock, as a round trip does on a server.
  const slowAcks = (real: Messaging.Messaging["Service"], ackTime: Duration.Input): Messaging.Messaging["Service"] => ({
    ...real,
    ack: (receipt) => Effect.andThen(Effect.sleep(ackTime), real.ack(receipt)),
    ackAll: (receipts) => Effect.andThen(Effect.sleep(ackTime), real.ackAll(receipts))
  })

  // One worker draining `payloads` with acks that take `ackTime`, stopped with `shutdownGrace`.
  const drainingWithSlowAcks = (
    real: Messaging.Messaging["Service"],
    payloads: ReadonlyArray<number>,
    ackTime: Duration.Input,
    shutdownGrace: Duration.Input
  ) =>
    Effect.andThen(
      real.sendBatch(q, payloads),
      Consumer.run([q], () => Effect.void, { concurrency: 1, batchSize: 1, visibilityTimeout: "10 minutes", shutdownGrace })
        .pipe(Effect.provideService(Messaging.Messaging, slowAcks(real, ackTime)), Effect.forkChild)
    )

  it.effect("a worker takes its next message while its acks are on the wire, and holds at most four settling", () =>
    Effect.gen(function*() {
      const real = yield* setup
      const started: Array<unknown> = []
      yield* real.sendBatch(q, [0, 1, 2, 3, 4, 5])
      const fiber = yield* Consumer.run([q], (message) => Effect.sync(() => started.push(message.payload)), {
        concurrency: 1,
        batchSize: 1
      }).pipe(Effect.provideService(Messaging.Messaging, slowAcks(real, "1 second")), Effect.forkChild)
      yield* settle
      assert.deepStrictEqual(started, [0, 1, 2, 3], "handlers ran while the acks before them were in flight")
      assert.strictEqual((yield* real.stats(q)).depth, 6, "nothing acked yet")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(started, [0, 1, 2, 3, 4, 5], "the fifth waited for the first ack")
      assert.isBelow((yield* real.stats(q)).depth, 6, "the first acks are in")
      // Two round trips at a time, each carrying every ack handed over before it started.
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assert.strictEqual((yield* real.stats(q)).depth, 0)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("shutdown lets the acks in flight finish within the grace", () =>
    Effect.gen(function*() {
      const real = yield* setup
      const before = yield* Metric.value(Observability.messagesAcked)
      const fiber = yield* drainingWithSlowAcks(real, [0, 1], "2 seconds", "5 seconds")
      yield* settle
      const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* settle
      assert.isUndefined(stopping.pollUnsafe(), "shutdown waits for the acks")
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(stopping)
      assert.strictEqual((yield* Metric.value(Observability.messagesAcked)).count - before.count, 2)
      assert.strictEqual((yield* real.stats(q)).depth, 0, "both handled messages acked, none returned")
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("an ack still in flight when the grace runs out is interrupted and its message returned", () =>
    Effect.gen(function*() {
      const real = yield* setup
      const fiber = yield* drainingWithSlowAcks(real, [0, 1], "1 hour", "1 second")
      yield* settle
      const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
      const stats = yield* real.stats(q)
      assert.strictEqual(stats.inFlight, 0, "no claim left held by nobody")
      const again = yield* real.receive(q, long)
      assert.deepStrictEqual(again.map((message) => message.payload).sort(), [0, 1])
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("a settle that fails is survived: the worker goes on to its next message", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const deliveries: Array<number> = []
      // The first delivery's handler outlives its visibility timeout, so its ack finds the
      // receipt stale; the same worker then handles the redelivery.
      const fiber = yield* Consumer.run([q], (message) => {
        deliveries.push(message.receiveCount)
        return message.receiveCount === 1 ? Effect.sleep("1500 millis") : Effect.void
      }, { visibilityTimeout: "1 second" }).pipe(Effect.forkChild)
      yield* settle
      yield* m.send(q, "late")
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      yield* TestClock.adjust("500 millis")
      yield* settle
      assert.deepStrictEqual(deliveries, [1, 2])
      assert.strictEqual((yield* m.stats(q)).depth, 0, "the redelivery was acked")
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("a handler that outlives the grace period is interrupted and its message returned", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const fiber = yield* Consumer.run([q], () => Effect.sleep("1 hour"), {
        visibilityTimeout: "10 minutes",
        shutdownGrace: "1 second"
      }).pipe(Effect.forkChild)
      yield* settle
      yield* m.send(q, "slow")
      yield* settle
      const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
      const [again] = yield* m.receive(q, long)
      assert.strictEqual(again?.payload, "slow")
    }).pipe(Effect.provide(InMemory.layer())))
})

describe("Consumer.stream", () => {
  it.effect("PollingOnly claims on its schedule and drains full batches at once", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const got: Array<unknown> = []
      const fiber = yield* Consumer.stream([q], { mode: "PollingOnly", poll: Schedule.spaced("5 seconds"), batchSize: 4 }).pipe(
        Stream.runForEach((message) => Effect.andThen(Effect.sync(() => got.push(message.payload)), m.ack(message.receipt))),
        Effect.forkChild
      )
      yield* settle
      yield* m.sendBatch(q, Array.from({ length: 10 }, (_, i) => i))
      yield* TestClock.adjust("4 seconds")
      yield* settle
      assert.strictEqual(got.length, 0, "nothing before the next poll")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(got, Array.from({ length: 10 }, (_, i) => i), "one poll drained three batches")
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("counts deliveries by path", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const before = (yield* Metric.value(Observability.receivedOn("push"))).count
      const fiber = yield* Consumer.stream([q]).pipe(
        Stream.runForEach((message) => m.ack(message.receipt)),
        Effect.forkChild
      )
      yield* settle
      yield* m.sendBatch(q, [1, 2, 3])
      yield* settle
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* Metric.value(Observability.receivedOn("push"))).count - before, 3)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("records each message's delivery latency, handler time and settle", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const read = Effect.all({
        latency: Metric.value(Observability.deliveryLatency),
        duration: Metric.value(Observability.handlerDuration),
        acked: Metric.value(Observability.messagesAcked),
        nacked: Metric.value(Observability.messagesNacked)
      })
      const before = yield* read
      yield* m.sendBatch(q, [1, 2, 3])
      yield* TestClock.adjust("5 millis")
      const fiber = yield* Consumer.run(
        [q],
        (message) => Effect.andThen(Effect.sleep("2 millis"), message.payload === 3 ? Effect.fail("no") : Effect.void),
        { concurrency: 3 }
      ).pipe(Effect.forkChild)
      yield* settle
      yield* TestClock.adjust("2 millis")
      yield* settle
      const after = yield* read
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(after.latency.count - before.latency.count, 3, "one latency per message")
      assert.strictEqual(after.latency.sum - before.latency.sum, 15, "each handler started 5 ms after its send")
      assert.strictEqual(after.duration.count - before.duration.count, 3, "one handler time per message")
      assert.strictEqual(after.duration.sum - before.duration.sum, 6, "each handler ran 2 ms")
      assert.strictEqual(after.acked.count - before.acked.count, 2, "the two successes acked")
      assert.strictEqual(after.nacked.count - before.nacked.count, 1, "the failure nacked")
    }).pipe(Effect.provide(InMemory.layer())))
})
