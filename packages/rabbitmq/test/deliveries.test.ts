/**
 * What AMQP does not give for free: channel isolation after a 404, acks only
 * after processing with prefetch as the demand, honest receive counts, and
 * foreign (non-JSON) bodies parked in the dead-letter queue.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Queue, Stream } from "effect"
import { type Message, Messaging, QueueName } from "@conveyor/core"
import { Topology } from "@conveyor/rabbitmq"
import { closeConnectionsNamed, layer, onRawChannel, raw, uniqueConnectionName, uniqueQueue, withQueues } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

describe("deliveries", () => {
  it.live("a 404 closes only its own channel: claims, publishing and other queues carry on", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("iso")
      const missing = QueueName.makeUnsafe(`${q}_nope`)
      yield* withQueues(m, [q])
      yield* m.sendBatch(q, ["a", "b"])
      const [held] = yield* m.receive(q, { max: 1, visibilityTimeout: "30 seconds" })
      assert.isFalse(yield* m.queueExists(missing))
      assert.strictEqual((yield* Effect.flip(m.stats(missing)))._tag, "QueueNotFound")
      assert.strictEqual((yield* Effect.flip(m.purgeQueue(missing)))._tag, "QueueNotFound")
      assert.strictEqual((yield* Effect.flip(m.receive(missing, long)))._tag, "QueueNotFound")
      assert.strictEqual((yield* Effect.flip(m.send(missing, 1)))._tag, "QueueNotFound")
      assert.strictEqual((yield* Effect.flip(m.send(missing, 1, { delay: "1 second" })))._tag, "QueueNotFound")
      // The claim made before all those 404s is still held and settles normally.
      yield* m.ack(held!.receipt)
      const rest = yield* m.receive(q, long)
      assert.deepStrictEqual(rest.map((message) => message.payload), ["b"])
      yield* m.ack(rest[0]!.receipt)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("subscribe: prefetch is the demand and a delivery is acked only when the subscriber acks it", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("prefetch")
      yield* withQueues(m, [q])
      yield* m.sendBatch(q, [1, 2, 3, 4, 5])
      const inbox = yield* Queue.unbounded<Message.QueuedMessage>()
      yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch: 2 }).pipe(
        Stream.runForEach((n) => n._tag === "Message" ? Queue.offer(inbox, n.message) : Effect.void),
        Effect.forkScoped
      )
      const first = yield* Queue.take(inbox)
      yield* Queue.take(inbox)
      yield* Effect.sleep("200 millis")
      assert.strictEqual(yield* Queue.size(inbox), 0, "no third delivery while two are unacked")
      const broker = yield* onRawChannel(connection, (ch) => ch.checkQueue(q))
      assert.strictEqual(broker.messageCount, 3, "the two handed-off deliveries are still unacked at the broker")
      assert.strictEqual((yield* m.stats(q)).inFlight, 2)
      yield* m.ack(first.receipt)
      const third = yield* Queue.take(inbox)
      assert.strictEqual(third.payload, 3)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("receiveCount is exact through nacks and visibility timeouts on a classic queue", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("count")
      yield* withQueues(m, [q])
      yield* m.send(q, "again")
      const counts: Array<number> = []
      for (let i = 0; i < 3; i++) {
        const [message] = yield* m.receive(q, long)
        counts.push(message!.receiveCount)
        yield* m.nack(message!.receipt)
      }
      const [expiring] = yield* m.receive(q, { max: 1, visibilityTimeout: "200 millis" })
      counts.push(expiring!.receiveCount)
      yield* Effect.sleep("400 millis")
      const [last] = yield* m.receive(q, long)
      counts.push(last!.receiveCount)
      assert.deepStrictEqual(counts, [1, 2, 3, 4, 5])
      assert.strictEqual(last!.enqueuedAt.getTime(), expiring!.enqueuedAt.getTime(), "requeues keep the first send time")
    }).pipe(Effect.scoped, Effect.provide(layer())))

  for (const kind of ["classic", "quorum"] as const) {
    it.live(`${kind}: a claim lost with its connection is redelivered with receiveCount 2 and its receipt is stale`, () => {
      const name = uniqueConnectionName(`count-${kind}`)
      return Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const q = uniqueQueue(`lost_${kind}`)
        yield* withQueues(m, [q])
        const id = yield* m.send(q, "held")
        const [held] = yield* m.receive(q, long)
        assert.strictEqual(yield* closeConnectionsNamed(name), 1)
        yield* m.pushHealth.pipe(Stream.filter((h) => h._tag === "Reconnected"), Stream.runHead)
        assert.strictEqual((yield* Effect.flip(m.ack(held!.receipt)))._tag, "StaleReceipt")
        const [again] = yield* m.receive(q, long)
        assert.strictEqual(again?.id, id)
        assert.strictEqual(again?.receiveCount, 2)
        yield* m.ack(again!.receipt)
      }).pipe(Effect.scoped, Effect.provide(layer({ connectionName: name, queueKind: kind })))
    })
  }

  it.live("a body that is not JSON is dead-lettered, never handed out, never lost", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("foreign")
      yield* withQueues(m, [q])
      yield* onRawChannel(connection, async (ch) => {
        ch.sendToQueue(q, Buffer.from("not { json"))
        ch.sendToQueue(q, Buffer.from("not json either"))
        await new Promise((resolve) => setTimeout(resolve, 50))
      })
      const id = yield* m.send(q, { fine: true })
      const received = yield* m.receive(q, long)
      assert.deepStrictEqual(received.map((message) => message.id), [id])
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "30 seconds" }).pipe(Stream.runCollect, Effect.forkChild)
      yield* onRawChannel(connection, async (ch) => {
        ch.sendToQueue(q, Buffer.from("\u0000binary"))
        await new Promise((resolve) => setTimeout(resolve, 50))
      })
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(fiber)
      const dead = yield* onRawChannel(connection, (ch) => ch.checkQueue(Topology.deadLetterQueue(q)))
      assert.strictEqual(dead.messageCount, 3)
    }).pipe(Effect.scoped, Effect.provide(layer())))
})
