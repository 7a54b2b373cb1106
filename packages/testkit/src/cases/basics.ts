import { Messaging, QueueName } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { Context } from "../Conformance.ts"
import { freshQueue, freshQueues } from "../Harness.ts"

const long = { visibilityTimeout: "30 seconds" } as const

export const basics = ({ test, options }: Context) => {
  test("queues: ensure is idempotent; exists, list, purge and delete", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.ensureQueue(q)
      assert.isTrue(yield* m.queueExists(q))
      assert.include(yield* m.listQueues, q)
      yield* m.sendBatch(q, [1, 2, 3])
      assert.strictEqual(yield* m.purgeQueue(q), 3)
      assert.deepStrictEqual(yield* m.receive(q, { max: 10, ...long }), [])
      yield* m.deleteQueue(q)
      assert.isFalse(yield* m.queueExists(q))
    }))

  test("a 43-character queue's 47-character dead-letter queue is a queue like any other, but cannot be ensured", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const [short] = yield* freshQueues(1)
      const q = QueueName.makeUnsafe(short.padEnd(QueueName.maxLength, "x"))
      const dlq = QueueName.deadLetter(q)
      assert.strictEqual(dlq.length, QueueName.pgmqMaxLength)
      yield* m.ensureQueue(q)
      yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(q)))
      assert.include(yield* m.listQueues, dlq)
      yield* m.send(dlq, "dead", { headers: { reason: "test" } })
      const [message] = yield* m.receive(dlq, long)
      assert.strictEqual(message?.payload, "dead")
      yield* m.ack(message!.receipt)
      assert.deepStrictEqual(yield* m.receive(dlq, long), [])
      const refused = yield* Effect.flip(m.ensureQueue(dlq))
      assert.strictEqual(refused._tag, "InvalidQueueName")
      yield* m.deleteQueue(q)
      assert.isFalse(yield* m.queueExists(dlq), "deleted with its queue")
    }))

  test("operations are descriptions: nothing happens until the effect runs", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const [q] = yield* freshQueues(1)
      const later = QueueName.makeUnsafe(`${q}_later`)
      const sendLater = m.send(later, "hello")
      const purgeLater = m.purgeQueue(later)
      assert.isFalse(yield* m.queueExists(later), "building the effects created nothing")
      yield* m.ensureQueue(later)
      yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(later)))
      yield* sendLater
      assert.strictEqual(yield* purgeLater, 1)
    }))

  test("round trip keeps payload and headers; receiveCount starts at 1", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const payload = { order: 42, lines: [{ sku: "a-1", qty: 2.5 }], note: "héllo ✓", gift: null, paid: true }
      const id = yield* m.send(q, payload, { headers: { tenant: "acme", "trace-id": "t-1" } })
      const [message, ...rest] = yield* m.receive(q, { max: 10, ...long })
      assert.strictEqual(rest.length, 0)
      assert.isDefined(message)
      assert.strictEqual(message!.id, id)
      assert.strictEqual(message!.queue, q)
      assert.deepStrictEqual(message!.payload, payload)
      assert.strictEqual(message!.headers.tenant, "acme")
      assert.strictEqual(message!.headers["trace-id"], "t-1")
      assert.strictEqual(message!.receiveCount, 1)
      yield* m.ack(message!.receipt)
      assert.deepStrictEqual(yield* m.receive(q, { max: 10, ...long }), [])
    }))

  test("sendBatch returns one id per payload, in input order", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const ids = yield* m.sendBatch(q, [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }])
      assert.strictEqual(new Set(ids).size, 5)
      const received = yield* m.receive(q, { max: 10, ...long })
      assert.strictEqual(received.length, 5)
      const byId = new Map(received.map((message) => [message.id, message.payload]))
      ids.forEach((id, n) => assert.deepStrictEqual(byId.get(id), { n }))
      if (options.fifo !== false) assert.deepStrictEqual(received.map((message) => message.id), [...ids])
    }))

  if (options.fifo !== false) {
    test("a single consumer receives a queue in send order", () =>
      Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const q = yield* freshQueue
        for (let n = 0; n < 20; n++) yield* m.send(q, n)
        const seen: Array<unknown> = []
        for (let i = 0; i < 4; i++) {
          for (const message of yield* m.receive(q, { max: 5, ...long })) {
            seen.push(message.payload)
            yield* m.ack(message.receipt)
          }
        }
        assert.deepStrictEqual(seen, Array.from({ length: 20 }, (_, n) => n))
      }))
  }

  test("fetch claims one visible message by id (without fetchById: Unsupported)", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const [first, second] = yield* m.sendBatch(q, ["first", "second"])
      if (!m.capabilities.fetchById) {
        const error = yield* Effect.flip(m.fetch(q, second!, long))
        assert.strictEqual(error._tag, "Unsupported")
        return
      }
      const fetched = yield* m.fetch(q, second!, long)
      assert.isTrue(Option.isSome(fetched))
      assert.strictEqual(Option.getOrThrow(fetched).payload, "second")
      assert.strictEqual(Option.getOrThrow(fetched).receiveCount, 1)
      assert.isTrue(Option.isNone(yield* m.fetch(q, second!, long)), "a claimed message cannot be fetched again")
      const rest = yield* m.receive(q, { max: 10, ...long })
      assert.deepStrictEqual(rest.map((message) => message.id), [first])
      yield* m.ack(Option.getOrThrow(fetched).receipt)
      assert.isTrue(Option.isNone(yield* m.fetch(q, second!, long)), "an acked message is gone")
    }))

  test("stats count depth, visible, in-flight and delayed messages", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.sendBatch(q, ["a", "b"])
      yield* m.send(q, "later", { delay: "30 seconds" })
      yield* m.receive(q, { max: 1, ...long })
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.queue, q)
      assert.strictEqual(stats.depth, 3)
      assert.strictEqual(stats.visible, 1)
      assert.strictEqual(stats.inFlight, 1)
      assert.strictEqual(stats.delayed, 1)
      const health = yield* m.healthCheck
      assert.isTrue(health.healthy, health.detail)
      assert.strictEqual(health.provider, m.provider)
    }))

  test("bad payloads are typed errors and nothing is sent", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const cyclic: Record<string, unknown> = { a: 1 }
      cyclic.self = cyclic
      const notJson: ReadonlyArray<unknown> = [{ big: 10n }, { f: () => 1 }, cyclic, Number.NaN, [undefined], new Date(0)]
      for (const payload of notJson) {
        // Deliberately outside the Json type: what an untyped caller could pass.
        const error = yield* Effect.flip(m.send(q, payload as never))
        assert.strictEqual(error._tag, "InvalidPayload")
      }
      const tooLarge = yield* Effect.flip(m.send(q, "x".repeat(1024 * 1024 + 1)))
      assert.strictEqual(tooLarge._tag, "MessageTooLarge")
      const batchWithOneBad = yield* Effect.flip(m.sendBatch(q, [1, { big: 1n } as never, 3]))
      assert.strictEqual(batchWithOneBad._tag, "InvalidPayload")
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }))

  test("sending to a queue that does not exist is QueueNotFound", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const [q] = yield* freshQueues(1)
      const missing = QueueName.makeUnsafe(`${q}_missing`)
      const error = yield* Effect.flip(m.send(missing, 1))
      assert.strictEqual(error._tag, "QueueNotFound")
      assert.isFalse(yield* m.queueExists(missing))
    }))

  test("many queues at once keep their messages apart", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const queues = yield* freshQueues(12)
      yield* Effect.forEach(queues, (q) => m.sendBatch(q, Array.from({ length: 5 }, () => q)), { concurrency: "unbounded" })
      for (const q of queues) {
        const received = yield* m.receive(q, { max: 10, ...long })
        assert.strictEqual(received.length, 5)
        for (const message of received) assert.strictEqual(message.payload, q)
      }
    }))

}
