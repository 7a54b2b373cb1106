/**
 * The AMQP objects behind a queue: dead-lettering, queue kinds, delay queues,
 * and the redeclaration of topology after a reconnect.
 */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Messaging } from "@conveyor/core"
import { Topology } from "@conveyor/rabbitmq"
import { closeConnectionsNamed, layer, onRawChannel, raw, rawQueueExists, uniqueConnectionName, uniqueQueue, withQueues } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

const queueType = (queue: string) =>
  Effect.promise(async () => {
    const { stdout } = await promisify(execFile)("rabbitmqctl", ["list_queues", "name", "type", "-q", "--no-table-headers"])
    return stdout.split("\n").map((line) => line.split("\t")).find(([name]) => name === queue)?.[1]
  })

describe("Topology", () => {
  it("rounds delays up to two significant digits", () => {
    assert.deepStrictEqual(
      [0.2, 1, 99, 100, 101, 250, 999, 1001, 1234, 45_678, 300_000].map(Topology.quantizeDelay),
      [1, 1, 99, 100, 110, 250, 1000, 1100, 1300, 46_000, 300_000]
    )
  })

  it.live("ensureQueue declares the queue, its dead-letter exchange and queue; deleteQueue removes them", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("topo")
      yield* m.ensureQueue(q)
      assert.strictEqual(yield* queueType(q), "classic")
      assert.isTrue(yield* rawQueueExists(connection, Topology.deadLetterQueue(q)))
      // The broker dead-letters through <q>_dlx: a raw reject lands in <q>_dlq.
      yield* onRawChannel(connection, async (ch) => {
        ch.sendToQueue(q, Buffer.from("\"raw\""))
        await new Promise((resolve) => setTimeout(resolve, 50))
        const got = await ch.get(q)
        if (got) ch.reject(got, false)
        await new Promise((resolve) => setTimeout(resolve, 50))
      })
      const [dead] = yield* m.receive(Topology.deadLetterQueue(q), long)
      assert.strictEqual(dead?.payload, "raw")
      yield* m.send(q, 1, { delay: "5 seconds" })
      const delayQueue = Topology.delayQueue(q, 5000)
      assert.isTrue(yield* rawQueueExists(connection, delayQueue))
      yield* m.deleteQueue(q)
      for (const name of [q, Topology.deadLetterQueue(q), delayQueue]) {
        assert.isFalse(yield* rawQueueExists(connection, name), name)
      }
      const dlxGone = yield* onRawChannel(connection, (ch) => ch.checkExchange(Topology.deadLetterExchange(q)).then(() => false, () => true))
      assert.isTrue(dlxGone)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("quorum queues by option, per layer or per queue; a kind clash is a clear error that poisons nothing", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const [byLayer, byQueue] = [uniqueQueue("quorum"), uniqueQueue("classic")]
      yield* withQueues(m, [byLayer])
      yield* withQueues(m, [byQueue], { kind: "classic" })
      assert.strictEqual(yield* queueType(byLayer), "quorum")
      assert.strictEqual(yield* queueType(Topology.deadLetterQueue(byLayer)), "quorum")
      assert.strictEqual(yield* queueType(byQueue), "classic")
      const clash = yield* Effect.flip(m.ensureQueue(byQueue, { kind: "quorum" }))
      assert.strictEqual(clash._tag, "ProviderError")
      assert.include(clash.message, "x-queue-type")
      // The management channel the 406 closed is reopened for the next operation.
      yield* m.send(byQueue, "still fine")
      assert.strictEqual((yield* m.stats(byQueue)).visible, 1)
    }).pipe(Effect.scoped, Effect.provide(layer({ queueKind: "quorum" }))))

  it.live("a delayed message waits in <q>_delay_<ms>, then dead-letters into the queue", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("delay")
      yield* withQueues(m, [q])
      const id = yield* m.send(q, "later", { delay: "400 millis" })
      const waiting = yield* onRawChannel(connection, (ch) => ch.checkQueue(Topology.delayQueue(q, 400)))
      assert.strictEqual(waiting.messageCount, 1)
      assert.strictEqual((yield* m.stats(q)).delayed, 1)
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      yield* Effect.sleep("600 millis")
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message?.id, id)
      assert.strictEqual(message?.receiveCount, 1)
      assert.deepStrictEqual(message?.headers, {}, "broker and provider headers (x-death, x-conveyor-*) stay hidden")
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("after a reconnect the layer redeclares the queues it ensured", () => {
    const name = uniqueConnectionName("redeclare")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("redeclare")
      yield* withQueues(m, [q])
      yield* onRawChannel(connection, (ch) => ch.deleteQueue(q))
      assert.isFalse(yield* rawQueueExists(connection, q))
      assert.strictEqual(yield* closeConnectionsNamed(name), 1)
      yield* m.pushHealth.pipe(Stream.filter((h) => h._tag === "Reconnected"), Stream.runHead)
      assert.isTrue(yield* rawQueueExists(connection, q))
    }).pipe(Effect.scoped, Effect.provide(layer({ connectionName: name })))
  })
})
