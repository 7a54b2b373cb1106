/**
 * What is particular to the Redis provider: bad input refused before it
 * reaches Redis, forged receipts, entries other writers put in a stream,
 * delayed and dead-lettered messages keeping their id and headers, settles
 * coalesced into one script call, subscriptions woken by a deleted queue,
 * and subscriptions giving back what they hold.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { type Message, Messaging, QueueName } from "@conveyor/core"
import { Redis } from "@conveyor/redis"
import { BadInput } from "@conveyor/testkit"
import { NodeRedis } from "@effect/platform-node"
import { layer, privateServer, raw, uniquePrefix, uniqueQueue, url } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

const withQueue = (m: Messaging.Messaging["Service"], q: QueueName.QueueName) =>
  Effect.acquireRelease(m.ensureQueue(q), () => Effect.ignore(m.deleteQueue(q)))

const keysUnder = (prefix: string) =>
  Effect.flatMap(raw(), (client) => Effect.promise(() => client.keys(`${prefix}*`)))

describe("bad input", () => {
  // The names every provider refuses (the conformance suite asserts the error), and those that
  // would mean something in a key or pattern; a dead-letter queue of a name too long is refused too.
  const hostile = [...BadInput.hostileNames, "a;b", "q\u0000", "héllo", "a*", "{a}", "x".repeat(48) + "_dlq"]

  it.live("invalid queue names never reach Redis: not a key is written", () => {
    const prefix = uniquePrefix("hostile")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      for (const name of hostile) {
        const delayed = ["send (delayed)", m.send(name as QueueName.QueueName, 1, { delay: "1 second" })] as const
        for (const [operation, attempt] of [...BadInput.everyOperation(m, name), delayed]) {
          yield* Effect.flip(attempt).pipe(Effect.orElseSucceed(() => assert.fail(`${operation}(${JSON.stringify(name)}) succeeded`)))
        }
      }
      assert.deepStrictEqual(yield* keysUnder(prefix), [], "not a single key was written")
    }).pipe(Effect.scoped, Effect.provide(layer({ prefix })))
  })

  // A receipt naming an invalid queue is the conformance suite's; these forge the token.
  it.live("forged receipts are refused without touching the claim they imitate", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("forged")
      yield* withQueue(m, q)
      yield* m.send(q, "held")
      const [message] = yield* m.receive(q, long)
      const real = message!.receipt
      const token = real.token as { entry: string; count: string }
      const forged: ReadonlyArray<[Message.Receipt, string]> = [
        [{ ...real, provider: "rabbitmq" }, "ProviderError"],
        [{ ...real, token: "1-0" }, "ProviderError"],
        [{ ...real, token: { entry: token.entry } }, "ProviderError"],
        [{ ...real, token: { ...token, count: "2" } }, "StaleReceipt"],
        [{ ...real, token: { entry: "0-1", count: "1" } }, "StaleReceipt"]
      ]
      for (const [receipt, tag] of forged) {
        for (const settle of [m.ack(receipt), m.nack(receipt), m.nack(receipt, { requeue: false }), m.extendVisibility(receipt, "1 minute")]) {
          const error = yield* Effect.flip(settle)
          assert.strictEqual(error._tag, tag, `${JSON.stringify(receipt)}: ${error.message}`)
        }
      }
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.inFlight, 1, "the real claim is still held")
      assert.strictEqual(stats.deadLettered, 0)
      yield* m.ack(real)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a payload over the configured maximum is MessageTooLarge and nothing is sent", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("large")
      yield* withQueue(m, q)
      yield* m.send(q, "x".repeat(254))
      const error = yield* Effect.flip(m.send(q, "x".repeat(255)))
      assert.strictEqual(error._tag, "MessageTooLarge")
      assert.strictEqual(error._tag === "MessageTooLarge" && error.bytes, 257)
      assert.strictEqual((yield* Effect.flip(m.sendBatch(q, ["ok", "x".repeat(300)])))._tag, "MessageTooLarge")
      assert.strictEqual((yield* Effect.flip(m.send(q, "x".repeat(300), { delay: "1 second" })))._tag, "MessageTooLarge")
      assert.strictEqual((yield* m.stats(q)).depth, 1)
    }).pipe(Effect.scoped, Effect.provide(layer({ maxPayloadBytes: 256 }))))

  it.live("a key prefix, group, consumer or connection name that could break keys or commands is refused when the layer is built", () =>
    Effect.gen(function*() {
      for (const options of [{ prefix: "a b" }, { prefix: "*" }, { group: "" }, { group: "g\n" }, { consumer: "c d" }, { connectionName: "my app" }]) {
        const error = yield* Effect.flip(Layer.build(Redis.layer({ url: Redacted.make(url), ...options })))
        assert.strictEqual(error._tag, "ProviderError", JSON.stringify(options))
        // Checked before connecting: the same answer with no server at all.
        const offline = yield* Effect.flip(Layer.build(Redis.layer({ url: Redacted.make("redis://127.0.0.1:1"), ...options })))
        assert.strictEqual(offline._tag, "ProviderError", JSON.stringify(options))
      }
    }).pipe(Effect.scoped))
})

describe("provider", () => {
  it.live("an entry another writer put in the stream is dead-lettered, kept, and the next message delivered", () => {
    const prefix = uniquePrefix("foreign")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const client = yield* raw()
      const q = uniqueQueue("foreign")
      yield* withQueue(m, q)
      yield* Effect.promise(() => client.sendCommand(["XADD", `${prefix}q:${q}`, "*", "p", "{not json"]))
      yield* Effect.promise(() => client.sendCommand(["XADD", `${prefix}q:${q}`, "*", "body", "no payload field"]))
      const id = yield* m.send(q, { fine: true })
      const received = yield* m.receive(q, long)
      assert.deepStrictEqual(received.map((message) => message.id), [id])
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.deadLettered, 2)
      const dead = yield* Effect.promise(() => client.sendCommand(["XRANGE", `${prefix}q:${QueueName.deadLetter(q)}`, "-", "+"]))
      assert.include(JSON.stringify(dead), "{not json")
      assert.include(JSON.stringify(dead), "no payload field")
    }).pipe(Effect.scoped, Effect.provide(layer({ prefix })))
  })

  it.live("deleting a queue wakes the subscriptions blocked on it, another layer's on the prefix too, long before blockTimeout", () => {
    const prefix = uniquePrefix("deleted")
    return Effect.gen(function*() {
      const q = uniqueQueue("deleted")
      // A blocked XREAD outlives a DEL of its keys: without the wake it would wait out the 30 s.
      const subscriber = yield* Layer.build(layer({ prefix, blockTimeout: "30 seconds" }))
      const m = Context.get(subscriber, Messaging.Messaging)
      yield* m.ensureQueue(q)
      const subscriptions = yield* Effect.forEach([q, QueueName.deadLetter(q)], (queue) =>
        Stream.runDrain(m.subscribe([queue], long)).pipe(Effect.forkChild))
      yield* Effect.sleep("200 millis")
      const other = Context.get(yield* Layer.build(layer({ prefix, group: "other" })), Messaging.Messaging)
      yield* other.deleteQueue(q)
      for (const subscription of subscriptions) {
        const ended = yield* Effect.flip(Fiber.join(subscription)).pipe(Effect.timeoutOption("1 second"))
        assert.strictEqual(Option.getOrThrowWith(ended, () => new Error("still blocked a second after the delete"))._tag, "QueueNotFound")
      }
      assert.deepStrictEqual(yield* keysUnder(`${prefix}w:`), [], "the wake streams went with the queue")
    }).pipe(Effect.scoped)
  })

  it.live("a delayed message keeps its id, headers and send time; a dead-lettered one its id and headers", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("kept")
      yield* withQueue(m, q)
      const before = Date.now()
      const id = yield* m.send(q, { n: 1 }, { delay: "300 millis", headers: { tenant: "acme" } })
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      yield* Effect.sleep("400 millis")
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message?.id, id)
      assert.deepStrictEqual(message?.headers, { tenant: "acme" })
      assert.isAtMost(Math.abs(message!.enqueuedAt.getTime() - before), 200, "enqueuedAt is the send, not the due time")
      yield* m.nack(message!.receipt, { requeue: false })
      const [dead] = yield* m.receive(QueueName.deadLetter(q), long)
      assert.strictEqual(dead?.id, id)
      assert.deepStrictEqual(dead?.payload, { n: 1 })
      assert.deepStrictEqual(dead?.headers, { tenant: "acme" })
      yield* m.ack(dead!.receipt)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("concurrent sends and acks coalesce: 64 of each cost a handful of script calls, not 64", () =>
    Effect.gen(function*() {
      const server = yield* privateServer
      const client = yield* raw(server.url)
      const calls = Effect.promise(async () => {
        const info = String(await client.sendCommand(["INFO", "commandstats"]))
        return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0)
      })
      yield* Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const q = uniqueQueue("coalesce")
        yield* withQueue(m, q)
        const beforeSends = yield* calls
        const ids = yield* Effect.forEach(Array.from({ length: 64 }, (_, n) => n), (n) => m.send(q, n), { concurrency: "unbounded" })
        const sends = (yield* calls) - beforeSends
        assert.isAtMost(sends, 3, `${sends} script calls for 64 sends`)
        assert.strictEqual(new Set(ids).size, 64)
        const received = yield* m.receive(q, { max: 64, visibilityTimeout: "30 seconds" })
        assert.deepStrictEqual(received.map((message) => message.payload), Array.from({ length: 64 }, (_, n) => n))
        assert.deepStrictEqual(received.map((message) => message.id), ids, "each caller got its own id")
        const before = yield* calls
        yield* Effect.forEach(received, (message) => m.ack(message.receipt), { concurrency: "unbounded", discard: true })
        const used = (yield* calls) - before
        assert.isAtMost(used, 3, `${used} script calls for 64 acks`)
        assert.strictEqual((yield* m.stats(q)).depth, 0)
      }).pipe(Effect.provide(layer({ url: Redacted.make(server.url) })))
    }).pipe(Effect.scoped))

  it.live("acks of claims with a deadline are proven by the deadline set alone: no XPENDING per receipt", () =>
    Effect.gen(function*() {
      const server = yield* privateServer
      const client = yield* raw(server.url)
      const xpending = Effect.promise(async () => {
        const info = String(await client.sendCommand(["INFO", "commandstats"]))
        return Number(/cmdstat_xpending:calls=(\d+)/.exec(info)?.[1] ?? 0)
      })
      yield* Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const q = uniqueQueue("proven")
        yield* withQueue(m, q)
        yield* m.sendBatch(q, Array.from({ length: 64 }, (_, n) => n))
        const received = yield* m.receive(q, { max: 64, visibilityTimeout: "30 seconds" })
        assert.strictEqual(received.length, 64)
        const before = yield* xpending
        yield* Effect.forEach(received, (message) => m.ack(message.receipt), { concurrency: "unbounded", discard: true })
        assert.strictEqual((yield* xpending) - before, 0, "no pending-list lookups")
        assert.strictEqual((yield* m.stats(q)).depth, 0)
      }).pipe(Effect.provide(layer({ url: Redacted.make(server.url) })))
    }).pipe(Effect.scoped))

  it.live("an interrupted subscription leaves what it emitted to the subscriber: settled after the end, never handed back", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("emitted")
      yield* withQueue(m, q)
      const ids = yield* m.sendBatch(q, ["a", "b", "c"])
      const got: Array<Message.QueuedMessage> = []
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "60 seconds" }).pipe(
        Stream.runForEach((n) => Effect.sync(() => n._tag === "Message" && got.push(n.message))),
        Effect.forkChild
      )
      while (got.length < 3) yield* Effect.sleep("10 millis")
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(got.map((message) => message.id), [...ids])
      assert.deepStrictEqual(yield* m.receive(q, long), [], "nothing emitted was handed back")
      yield* Effect.forEach(got, (message) => m.ack(message.receipt), { discard: true })
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a claim another consumer abandoned reaches a subscription when its visibility timeout passes", () => {
    const prefix = uniquePrefix("expired")
    return Effect.gen(function*() {
      const q = uniqueQueue("expired")
      const claimedAt = yield* Effect.gen(function*() {
        const o = yield* Messaging.Messaging
        yield* o.ensureQueue(q)
        yield* o.send(q, "abandoned")
        const [message] = yield* o.receive(q, { max: 1, visibilityTimeout: "800 millis" })
        assert.strictEqual(message?.receiveCount, 1)
        return Date.now()
      }).pipe(Effect.provide(layer({ prefix, consumer: "crashed" })))
      yield* Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(q)))
        const got: Array<Message.QueuedMessage> = []
        // A long block timeout: the subscription must wake at the deadline it learnt, not on a tick.
        yield* m.subscribe([q], { visibilityTimeout: "30 seconds" }).pipe(
          Stream.runForEach((n) => Effect.sync(() => n._tag === "Message" && got.push(n.message))),
          Effect.forkScoped
        )
        while (got.length === 0 && Date.now() - claimedAt < 10_000) yield* Effect.sleep("10 millis")
        const waited = Date.now() - claimedAt
        assert.strictEqual(got.length, 1)
        assert.strictEqual(got[0]!.receiveCount, 2)
        assert.isAtLeast(waited, 790, "not before the other claim expired")
        // Far below the 30 s block timeout: the subscription woke at the deadline it learnt.
        assert.isAtMost(waited, 3000, "soon after it expired")
      }).pipe(Effect.scoped, Effect.provide(layer({ prefix, blockTimeout: "30 seconds" })))
    }).pipe(Effect.scoped)
  })

  it.live("layerWithRedis runs on a Redis service the application already has", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("own")
      yield* withQueue(m, q)
      const id = yield* m.send(q, "on your client")
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message?.id, id)
      yield* m.ack(message!.receipt)
    }).pipe(
      Effect.scoped,
      Effect.provide(Redis.layerWithRedis({ prefix: uniquePrefix("own") }).pipe(Layer.provide(NodeRedis.layer({ url }))))
    ))

  it.live("layers of different groups each get every message; an entry is deleted once every group settled it", () => {
    const prefix = uniquePrefix("groups")
    return Effect.gen(function*() {
      const client = yield* raw()
      const q = uniqueQueue("fanout")
      const stream = `${prefix}q:${q}`
      const length = Effect.promise(async () => Number(await client.sendCommand(["XLEN", stream])))
      /** Receives everything and acks it (dead-letters the first when told); returns the payloads. */
      const drain = (deadLetterFirst: boolean) =>
        Effect.gen(function*() {
          const m = yield* Messaging.Messaging
          const received = yield* m.receive(q, long)
          for (const [i, message] of received.entries()) {
            yield* i === 0 && deadLetterFirst ? m.nack(message.receipt, { requeue: false }) : m.ack(message.receipt)
          }
          return received.map((message) => message.payload)
        })
      const a = layer({ prefix, group: "a" })
      const b = layer({ prefix, group: "b" })
      yield* Effect.provide(Effect.flatMap(Messaging.Messaging, (m) => m.ensureQueue(q)), b)
      yield* Effect.provide(Effect.flatMap(Messaging.Messaging, (m) => Effect.andThen(m.ensureQueue(q), m.sendBatch(q, [1, 2, 3]))), a)
      assert.deepStrictEqual(yield* Effect.provide(drain(true), a), [1, 2, 3])
      assert.strictEqual(yield* length, 3, "group b has not had them yet: nothing deleted")
      assert.deepStrictEqual(yield* Effect.provide(drain(false), b), [1, 2, 3])
      assert.strictEqual(yield* length, 0, "settled by every group: deleted")
      yield* Effect.provide(Effect.flatMap(Messaging.Messaging, (m) => m.deleteQueue(q)), a)
      yield* Effect.promise(async () => {
        const left = await client.keys(`${prefix}*`)
        if (left.length > 0) await client.del(left)
      })
    }).pipe(Effect.scoped)
  })
})
