import { Messaging, QueueName } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import type { Context } from "../Conformance.ts"
import { freshQueue } from "../Harness.ts"

// Whole seconds: PGMQ counts visibility timeouts and delays in seconds.
const short = { max: 10, visibilityTimeout: "1 second" } as const
const long = { max: 10, visibilityTimeout: "30 seconds" } as const

export const visibility = ({ h, test }: Context) => {
  test("a claimed message is invisible until its timeout, then redelivered with receiveCount 2", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const id = yield* m.send(q, "again")
      const [first] = yield* m.receive(q, short)
      assert.strictEqual(first?.receiveCount, 1)
      assert.deepStrictEqual(yield* m.receive(q, short), [])
      yield* h.advance("1500 millis")
      const [second] = yield* m.receive(q, long)
      assert.strictEqual(second?.id, id)
      assert.strictEqual(second?.receiveCount, 2)
      yield* m.ack(second!.receipt)
    }))

  test("a delayed message is invisible to receive until due", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const id = yield* m.send(q, "later", { delay: "2 seconds" })
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      yield* h.advance("1 second")
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      yield* h.advance("1500 millis")
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message?.id, id)
    }))

  test("receive with a waitTime: a provider that long polls (maxWaitTime) answers when a message arrives; any other at once", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const started = yield* Clock.currentTimeMillis
      const waiting = yield* Effect.forkChild(m.receive(q, { ...long, waitTime: "5 seconds" }))
      const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - started)
      if (m.capabilities.maxWaitTime === undefined) {
        // Ignored: the empty queue answers at once (on virtual time, without the clock moving).
        assert.deepStrictEqual(yield* Fiber.join(waiting), [])
        assert.isBelow(yield* elapsed, 1000)
      } else {
        yield* h.advance("300 millis")
        const id = yield* m.send(q, "while waiting")
        const got = yield* Fiber.join(waiting)
        assert.deepStrictEqual(got.map((message) => message.id), [id])
        assert.isBelow(yield* elapsed, 2000, "answered when the message arrived, not at the end of the 5 s wait")
        yield* m.ack(got[0]!.receipt)
        // Nothing arrives: it waits the whole second asked for, then answers empty.
        const before = yield* Clock.currentTimeMillis
        assert.deepStrictEqual(yield* m.receive(q, { ...long, waitTime: "1 second" }), [])
        assert.isAtLeast((yield* Clock.currentTimeMillis) - before, 900)
      }
    }))

  test("nack requeues at once, or after its delay", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, "retry me")
      const [first] = yield* m.receive(q, long)
      yield* m.nack(first!.receipt)
      const [second] = yield* m.receive(q, long)
      assert.strictEqual(second?.id, first!.id)
      assert.strictEqual(second?.receiveCount, 2)
      yield* m.nack(second!.receipt, { delay: "2 seconds" })
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      yield* h.advance("1 second")
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      yield* h.advance("1500 millis")
      const [third] = yield* m.receive(q, long)
      assert.strictEqual(third?.id, first!.id)
      assert.strictEqual(third?.receiveCount, 3)
    }))

  test("nack without requeue moves the message to the dead-letter queue (without deadLetter: Unsupported, message kept)", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, { poison: true }, { headers: { reason: "test" } })
      const [message] = yield* m.receive(q, long)
      if (!m.capabilities.deadLetter) {
        const refused = yield* Effect.flip(m.nack(message!.receipt, { requeue: false }))
        assert.strictEqual(refused._tag, "Unsupported")
        assert.strictEqual((yield* m.stats(q)).depth, 1, "never silently deleted")
        return
      }
      yield* m.nack(message!.receipt, { requeue: false })
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      const dlq = QueueName.deadLetter(q)
      let dead: ReadonlyArray<unknown> = []
      yield* h.eventually(
        "the message arrives in the dead-letter queue",
        Effect.map(m.receive(dlq, long), (received) => {
          dead = received.map((d) => d.payload)
          return received.length > 0
        })
      )
      assert.deepStrictEqual(dead, [{ poison: true }])
    }))

  test("extendVisibility keeps a delivery invisible for the new duration", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, "slow work")
      const [message] = yield* m.receive(q, short)
      yield* m.extendVisibility(message!.receipt, "3 seconds")
      yield* h.advance("1500 millis")
      assert.deepStrictEqual(yield* m.receive(q, long), [], "still invisible after the original timeout")
      yield* m.ack(message!.receipt)
      yield* h.advance("2 seconds")
      assert.deepStrictEqual(yield* m.receive(q, long), [], "acked after the extension: gone for good")
    }))

  test("stale receipts are refused and never settle someone else's claim", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, "contended")
      const [mine] = yield* m.receive(q, short)
      yield* h.advance("1500 millis")
      const expired = yield* Effect.flip(m.ack(mine!.receipt))
      assert.strictEqual(expired._tag, "StaleReceipt", "a claim whose timeout passed is no longer held")
      const [theirs] = yield* m.receive(q, long)
      assert.strictEqual(theirs?.id, mine!.id)
      for (const settle of [m.ack(mine!.receipt), m.nack(mine!.receipt), m.extendVisibility(mine!.receipt, "1 minute")]) {
        const error = yield* Effect.flip(settle)
        assert.strictEqual(error._tag, "StaleReceipt")
      }
      yield* m.ack(theirs!.receipt)
      const twice = yield* Effect.flip(m.ack(theirs!.receipt))
      assert.strictEqual(twice._tag, "StaleReceipt")
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }))

}
