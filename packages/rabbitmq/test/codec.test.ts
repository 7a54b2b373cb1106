/**
 * The first-send time travels in the UUIDv7 message id: it keeps
 * millisecond precision across requeues, and another publisher's ids (or a
 * missing id) fall back to the AMQP timestamp instead of passing for one,
 * and a message with neither is dated when this provider first sees it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Messaging } from "@conveyor/core"
import { newMessageId } from "#internal/Codec"
import { layer, onRawChannel, raw, uniqueQueue, withQueues } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

describe("message ids", () => {
  it("a new id is a UUIDv7 carrying its time", () => {
    const at = Date.UTC(2026, 10, 22, 16, 30, 0, 123)
    const id = newMessageId(at)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.strictEqual(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at)
    assert.notStrictEqual(newMessageId(at), id, "the rest is random")
  })

  it.live("enqueuedAt keeps its milliseconds across a nack and a visibility timeout", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("ids")
      yield* withQueues(m, [q])
      const before = Date.now()
      const id = yield* m.send(q, "timed")
      const after = Date.now()
      const [first] = yield* m.receive(q, long)
      const enqueuedAt = first!.enqueuedAt.getTime()
      assert.isAtLeast(enqueuedAt, before)
      assert.isAtMost(enqueuedAt, after)
      yield* m.nack(first!.receipt)
      const [second] = yield* m.receive(q, { max: 1, visibilityTimeout: "1 second" })
      assert.strictEqual(second!.id, id)
      assert.strictEqual(second!.enqueuedAt.getTime(), enqueuedAt)
      yield* Effect.sleep("1500 millis")
      const [third] = yield* m.receive(q, long)
      assert.strictEqual(third!.id, id)
      assert.strictEqual(third!.enqueuedAt.getTime(), enqueuedAt)
      assert.strictEqual(third!.receiveCount, 3)
      yield* m.ack(third!.receipt)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a foreign id does not pass for a time: enqueuedAt falls back to the AMQP timestamp", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("ids")
      yield* withQueues(m, [q])
      const stamp = 1_700_000_000 // seconds
      const lookalike = newMessageId(Date.now()) // a UUIDv7 whose time disagrees with the stamp
      yield* onRawChannel(connection, async (ch) => {
        ch.sendToQueue(q, Buffer.from("1"), { messageId: lookalike, timestamp: stamp, contentType: "application/json" })
        ch.sendToQueue(q, Buffer.from("2"), { messageId: "order-2", timestamp: stamp, contentType: "application/json" })
      })
      const received = yield* m.receive(q, long)
      assert.deepStrictEqual(received.map((message) => message.payload), [1, 2])
      for (const message of received) assert.strictEqual(message.enqueuedAt.getTime(), stamp * 1000)
      yield* Effect.forEach(received, (message) => m.ack(message.receipt))
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a message with neither id nor timestamp is dated when first received, and keeps that date across a nack", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("ids")
      yield* withQueues(m, [q])
      yield* onRawChannel(connection, async (ch) => {
        ch.sendToQueue(q, Buffer.from("3"), { contentType: "application/json" })
      })
      yield* Effect.sleep("200 millis") // on the queue well before it is received
      const before = Date.now()
      const [first] = yield* m.receive(q, long)
      const after = Date.now()
      const firstSeen = first!.enqueuedAt.getTime()
      assert.isAtLeast(firstSeen, before)
      assert.isAtMost(firstSeen, after)
      yield* m.nack(first!.receipt)
      const [second] = yield* m.receive(q, long)
      assert.strictEqual(second!.payload, 3)
      // The copy carries it as an AMQP timestamp, which has whole seconds.
      assert.strictEqual(second!.enqueuedAt.getTime(), Math.floor(firstSeen / 1000) * 1000)
      yield* m.ack(second!.receipt)
    }).pipe(Effect.scoped, Effect.provide(layer())))
})
