import { type Message, Messaging, type QueueName } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option } from "effect"
import type { Context } from "../Conformance.ts"
import { freshQueue } from "../Harness.ts"

// Whole seconds: PGMQ counts visibility timeouts in seconds.
const short = { visibilityTimeout: "1 second" } as const
const long = { visibilityTimeout: "30 seconds" } as const

/** Claims up to `count` messages of `q`, however many receives that takes. */
const claimAll = (
  m: Messaging.Messaging["Service"],
  q: QueueName.QueueName,
  count: number,
  options: typeof short | typeof long
) =>
  Effect.gen(function*() {
    const claimed: Array<Message.QueuedMessage> = []
    for (let i = 0; i < 20 && claimed.length < count; i++) {
      claimed.push(...(yield* m.receive(q, { max: count - claimed.length, ...options })))
    }
    return claimed
  })

const sorted = (messages: ReadonlyArray<Message.QueuedMessage>) =>
  [...messages].sort((a, b) => Number(a.payload) - Number(b.payload))

export const batching = ({ h, test }: Context) => {
  test("concurrent acks with one stale receipt among fresh ones: only its caller gets StaleReceipt", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const total = 10
      yield* m.sendBatch(q, Array.from({ length: total }, (_, n) => n))
      const [mine] = yield* m.receive(q, { max: 1, ...short })
      yield* h.advance("1500 millis")
      // The expired claim is someone else's now; the others are fresh.
      const claimed = yield* claimAll(m, q, total, long)
      assert.strictEqual(claimed.length, total)
      const theirs = claimed.find((message) => message.id === mine!.id)!
      const fresh = claimed.filter((message) => message !== theirs)
      const exits = yield* Effect.forEach(
        [mine!, ...fresh],
        (message) => Effect.exit(m.ack(message.receipt)),
        { concurrency: "unbounded" }
      )
      const [stale, ...others] = exits
      const staleError = Exit.isFailure(stale!) ? Option.getOrUndefined(Exit.findErrorOption(stale!)) : undefined
      assert.strictEqual(staleError?._tag, "StaleReceipt", "the stale caller gets StaleReceipt")
      assert.isTrue(others.every(Exit.isSuccess), "every fresh ack succeeds")
      // Nothing else was settled: the other claimant still holds the message, and only it.
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.depth, 1)
      yield* m.ack(theirs.receipt)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }))

  test("the same receipt settled twice at once settles once: the other caller gets StaleReceipt", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.sendBatch(q, ["acked", "nacked"])
      const claimed = yield* claimAll(m, q, 2, long)
      const acked = claimed.find((message) => message.payload === "acked")!
      const nacked = claimed.find((message) => message.payload === "nacked")!
      for (const settle of [m.ack(acked.receipt), m.nack(nacked.receipt)]) {
        const exits = yield* Effect.all([Effect.exit(settle), Effect.exit(settle)], { concurrency: "unbounded" })
        const errors = exits.flatMap((exit) => Exit.isFailure(exit) ? [Option.getOrUndefined(Exit.findErrorOption(exit))?._tag] : [])
        assert.deepStrictEqual(errors, ["StaleReceipt"], "exactly one of the two settled")
      }
      const again = yield* claimAll(m, q, 1, long)
      assert.deepStrictEqual(again.map((message) => [message.payload, message.receiveCount]), [["nacked", 2]])
      yield* m.ack(again[0]!.receipt)
    }))

  test("ackAll acks receipts of two queues in one call, one Exit each in order; a stale, repeated, invalid or foreign one fails alone", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const [q1, q2] = [yield* freshQueue, yield* freshQueue]
      yield* m.sendBatch(q1, [1, 2, 3])
      yield* m.sendBatch(q2, [4, 5])
      const [a1, a2, a3] = sorted(yield* claimAll(m, q1, 3, long))
      const [b1, b2] = sorted(yield* claimAll(m, q2, 2, long))
      yield* m.ack(a3!.receipt)
      const invalid = { ...a1!.receipt, queue: "not a queue!" as QueueName.QueueName }
      const foreign = { ...a2!.receipt, provider: "elsewhere" }
      const exits = yield* m.ackAll([a1!, b1!, a3!, a2!, b1!, b2!].map((message) => message.receipt).concat([invalid, foreign]))
      const outcome = exits.map((exit) => Exit.isSuccess(exit) ? "ok" : Option.getOrUndefined(Exit.findErrorOption(exit))?._tag)
      // A receipt given twice settles once; which of the two is the provider's to say.
      const twice = [outcome[1], outcome[4]].sort()
      assert.deepStrictEqual(twice, ["StaleReceipt", "ok"], "the repeated receipt settled once")
      assert.deepStrictEqual(
        [outcome[0], outcome[2], outcome[3], outcome[5], outcome[6], outcome[7]],
        ["ok", "StaleReceipt", "ok", "ok", "InvalidQueueName", "ProviderError"]
      )
      assert.strictEqual((yield* m.stats(q1)).depth, 0)
      assert.strictEqual((yield* m.stats(q2)).depth, 0)
      assert.deepStrictEqual(yield* m.ackAll([]), [])
    }))

  test("concurrent acks interrupted half-way lose nothing: each message is acked or comes back", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const total = 60
      yield* m.sendBatch(q, Array.from({ length: total }, (_, n) => n))
      const claimed = yield* claimAll(m, q, total, short)
      assert.strictEqual(claimed.length, total)
      const acked = new Set<string>()
      const halfway = yield* Deferred.make<void>()
      // Waves of concurrent acks (coalesced by providers that batch), with a yield between
      // waves, so that the interruption lands half-way even where an ack completes at once.
      const waves = Array.from({ length: total / 10 }, (_, w) => claimed.slice(w * 10, w * 10 + 10))
      const acking = yield* Effect.forEach(waves, (wave, w) =>
        Effect.andThen(
          Effect.forEach(wave, (message) =>
            Effect.tap(m.ack(message.receipt), () => Effect.sync(() => acked.add(message.id))), {
            concurrency: "unbounded",
            discard: true
          }),
          w === 1 ? Effect.andThen(Deferred.succeed(halfway, undefined), Effect.yieldNow) : Effect.yieldNow
        ), { discard: true }).pipe(Effect.forkChild)
      yield* Deferred.await(halfway)
      yield* Fiber.interrupt(acking)
      assert.isBelow(acked.size, total, "interrupted before every ack completed")
      // Past the visibility timeout, what was not acked is visible again: none stuck invisible.
      yield* h.advance("1500 millis")
      const back = yield* claimAll(m, q, total, long)
      for (const message of back) assert.isFalse(acked.has(message.id), `message ${message.id} was acked and came back`)
      assert.isAtMost(back.length + acked.size, total)
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.depth, back.length, "every message still in the queue came back")
      yield* Effect.forEach(back, (message) => m.ack(message.receipt), { discard: true })
    }))
}
