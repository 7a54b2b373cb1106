/**
 * Acks of one consumer channel coalesce into `basic.ack multiple` where that
 * is safe: never over a delivery still held or one being nacked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Stream } from "effect"
import { type Message, Messaging } from "@conveyor/core"
import { layer, onRawChannel, raw, uniqueQueue, withQueues } from "./support.ts"

const subscribed = (m: Messaging.Messaging["Service"], q: Parameters<Messaging.Messaging["Service"]["send"]>[0], prefetch: number) =>
  Effect.gen(function*() {
    const inbox = yield* Queue.unbounded<Message.QueuedMessage>()
    yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch }).pipe(
      Stream.runForEach((n) => n._tag === "Message" ? Queue.offer(inbox, n.message) : Effect.void),
      Effect.forkScoped
    )
    const take = (n: number) => Effect.forEach(Array.from({ length: n }), () => Queue.take(inbox))
    return { inbox, take }
  })

describe("coalesced acks", () => {
  it.live("concurrent acks around a held delivery and a nack leave those two alone", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("acks")
      yield* withQueues(m, [q])
      yield* m.sendBatch(q, Array.from({ length: 10 }, (_, i) => i))
      const { inbox, take } = yield* subscribed(m, q, 10)
      const got = yield* take(10)
      const held = got[3]!
      const nacked = got[6]!
      // Acks of everything else, and a nack, all issued in the same turn.
      const others = got.filter((message) => message !== held && message !== nacked)
      yield* Effect.all([
        Effect.forEach(others, (message) => m.ack(message.receipt), { concurrency: "unbounded", discard: true }),
        m.nack(nacked.receipt)
      ], { concurrency: "unbounded" })
      const redelivered = yield* Queue.take(inbox)
      assert.strictEqual(redelivered.payload, nacked.payload, "the nacked message comes back")
      assert.strictEqual(redelivered.receiveCount, 2)
      // The held delivery was not covered by a multiple ack: its own ack still settles it,
      // and the channel survives (a double ack would close it).
      yield* m.ack(held.receipt)
      yield* m.ack(redelivered.receipt)
      yield* m.send(q, "after")
      const [after] = yield* take(1)
      assert.strictEqual(after!.payload, "after")
      yield* m.ack(after!.receipt)
      yield* Effect.sleep("100 millis")
      const broker = yield* onRawChannel(connection, (ch) => ch.checkQueue(q))
      assert.strictEqual(broker.messageCount, 0)
      assert.strictEqual((yield* m.stats(q)).inFlight, 0)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a stale receipt among fresh ones fails only its own ack", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("acks_stale")
      yield* withQueues(m, [q])
      yield* m.sendBatch(q, [1, 2, 3, 4])
      const { take } = yield* subscribed(m, q, 4)
      const got = yield* take(4)
      yield* m.ack(got[1]!.receipt)
      const results = yield* Effect.forEach(got, (message) => Effect.result(m.ack(message.receipt)), { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => r._tag === "Success" ? "ok" : r.failure._tag), ["ok", "StaleReceipt", "ok", "ok"])
      yield* Effect.sleep("100 millis")
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.scoped, Effect.provide(layer())))
})
