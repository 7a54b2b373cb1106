import { InMemory, MessageClient, Messaging, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"

const Order = Schema.Struct({ id: Schema.Number, sku: Schema.NonEmptyString, placedAt: Schema.DateFromString })
const q = QueueName.makeUnsafe("orders")
const orders = MessageClient.make(q, Order)

const setup = Effect.flatMap(Messaging.Messaging, (m) => Effect.as(m.ensureQueue(q), m))

describe("MessageClient", () => {
  it.effect("send encodes with the schema, consumption decodes", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const placedAt = new Date("2026-11-22T10:00:00Z")
      yield* orders.send({ id: 1, sku: "a-1", placedAt })
      const [raw] = yield* m.receive(q, { max: 1, visibilityTimeout: "30 seconds" })
      assert.deepStrictEqual(raw!.payload, { id: 1, sku: "a-1", placedAt: "2026-11-22T10:00:00.000Z" })
      const decoded = yield* orders.decode(raw!)
      assert.strictEqual(decoded.placedAt.getTime(), placedAt.getTime())
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("a value the schema refuses is InvalidPayload and is not sent", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const error = yield* Effect.flip(orders.send({ id: 2, sku: "", placedAt: new Date(0) }))
      assert.strictEqual(error._tag, "InvalidPayload")
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("a payload that fails its schema is dead-lettered once, never retried", () =>
    Effect.gen(function*() {
      const m = yield* setup
      const handled: Array<number> = []
      const fiber = yield* orders.run((order) => Effect.sync(() => handled.push(order.id)), { maxReceives: 10 }).pipe(
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* m.send(q, { id: "not a number", sku: "b", placedAt: "yesterday" })
      yield* orders.send({ id: 3, sku: "c", placedAt: new Date(0) })
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* TestClock.adjust("1 minute")
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(handled, [3])
      const dead = yield* m.receive(QueueName.deadLetter(q), { max: 10, visibilityTimeout: "30 seconds" })
      assert.strictEqual(dead.length, 1)
      assert.strictEqual(dead[0]!.receiveCount, 1)
      assert.deepStrictEqual(dead[0]!.payload, { id: "not a number", sku: "b", placedAt: "yesterday" })
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.provide(InMemory.layer())))
})
