import { Batching, Message, QueueName, Receipts } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"

/** A batched doubling whose round trips are recorded; odd items fail on their own. */
const recorder = (options: { readonly maxInFlight?: number; readonly gate?: Deferred.Deferred<void> } = {}) =>
  Effect.gen(function*() {
    const trips: Array<ReadonlyArray<number>> = []
    const double = yield* Batching.make<number, number, string>({
      key: (n) => (n >= 100 ? "big" : "small"),
      run: (items) =>
        Effect.gen(function*() {
          trips.push(items)
          if (options.gate !== undefined) yield* Deferred.await(options.gate)
          return items.map((n) => (n % 2 === 1 ? Exit.fail(`odd ${n}`) : Exit.succeed(n * 2)))
        }),
      maxBatchSize: 8,
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight })
    })
    return { double, trips }
  })

describe("Batching", () => {
  it.effect("concurrent calls share one round trip and each gets its own result", () =>
    Effect.gen(function*() {
      const { double, trips } = yield* recorder()
      const results = yield* Effect.forEach([2, 3, 4], (n) => Effect.result(double(n)), { concurrency: "unbounded" })
      assert.deepStrictEqual(trips, [[2, 3, 4]])
      assert.deepStrictEqual(results.map((r) => r._tag === "Success" ? r.success : r.failure), [4, "odd 3", 8])
    }))

  it.effect("a lone call runs alone, at once", () =>
    Effect.gen(function*() {
      const { double, trips } = yield* recorder()
      assert.strictEqual(yield* double(10), 20)
      assert.strictEqual(yield* double(12), 24)
      assert.deepStrictEqual(trips, [[10], [12]])
    }))

  it.effect("a lone call goes out before the next scheduler round", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { double, trips } = yield* recorder({ gate })
      const call = yield* Effect.forkChild(double(10), { startImmediately: true })
      // Only the microtasks queued so far run before this resumes: no scheduler round passes.
      yield* Effect.promise(() => Promise.resolve())
      assert.deepStrictEqual(trips, [[10]])
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(call), 20)
    }))

  it.effect("keys never share a round trip, and a full batch is split", () =>
    Effect.gen(function*() {
      const { double, trips } = yield* recorder({ maxInFlight: 4 })
      const items = [...Array.from({ length: 10 }, (_, i) => i * 2), 100, 102]
      yield* Effect.forEach(items, double, { concurrency: "unbounded" })
      const sorted = trips.map((trip) => [...trip].sort((a, b) => a - b))
      assert.deepStrictEqual(sorted.flat().sort((a, b) => a - b), [...items].sort((a, b) => a - b))
      assert.isTrue(sorted.every((trip) => trip.every((n) => n >= 100) || trip.every((n) => n < 100)))
      assert.isTrue(sorted.every((trip) => trip.length <= 8))
    }))

  it.effect("calls made while a round trip is running gather into the next one", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { double, trips } = yield* recorder({ gate })
      const first = yield* Effect.forkChild(double(2))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      const later = yield* Effect.forkChild(Effect.forEach([4, 6, 8], double, { concurrency: "unbounded" }))
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      assert.deepStrictEqual(trips, [[2]])
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(first), 4)
      assert.deepStrictEqual(yield* Fiber.join(later), [8, 12, 16])
      assert.deepStrictEqual(trips, [[2], [4, 6, 8]])
    }))

  it.effect("a failed round trip fails every caller in it", () =>
    Effect.gen(function*() {
      const broken = yield* Batching.make<number, number, string>({ key: () => "k", run: () => Effect.fail("down") })
      const results = yield* Effect.forEach([1, 2], (n) => Effect.flip(broken(n)), { concurrency: "unbounded" })
      assert.deepStrictEqual(results, ["down", "down"])
    }))
})

describe("Receipts and headers", () => {
  const receipt = { provider: "memory", queue: QueueName.makeUnsafe("receipts"), messageId: "7", token: 1 }

  it("stale and foreign receipts name the message and the providers", () => {
    const stale = Receipts.stale(receipt)
    assert.strictEqual(stale._tag, "StaleReceipt")
    assert.include(stale.message, "message 7 on receipts")
    const foreign = Receipts.foreign(receipt, "pgmq", "ack")
    assert.strictEqual(foreign._tag, "ProviderError")
    assert.strictEqual(foreign.operation, "ack")
    assert.include(foreign.message, "memory cannot be settled by pgmq")
  })

  it("headers other clients wrote keep every value", () => {
    assert.deepStrictEqual(Message.headersFrom({ tenant: "acme", n: 5, ok: true, tags: ["a"], none: null }), {
      tenant: "acme",
      n: "5",
      ok: "true",
      tags: "[\"a\"]",
      none: "null"
    })
    assert.deepStrictEqual(Message.headersFrom([1]), {})
    assert.deepStrictEqual(Message.headersFrom(null), {})
  })
})
