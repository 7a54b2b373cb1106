/**
 * Faults, each counting what was sent against what was processed: the
 * blocked connection killed, every connection killed, the server paused, the
 * server crashed and restarted with persistence on (a private redis-server:
 * the shared one keeps nothing on disk), a queue deleted under a
 * subscription, and an unreachable server.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Fiber, Layer, Redacted, Ref, Schedule, Stream } from "effect"
import { Consumer, type MessageNotification, Messaging } from "@conveyor/core"
import { Redis } from "@conveyor/redis"
import { killConnections, layer, privateServer, raw, uniqueQueue, url } from "./support.ts"

const eventually = (what: string, check: Effect.Effect<boolean>, within = 20_000) =>
  Effect.gen(function*() {
    const until = Date.now() + within
    while (!(yield* check)) {
      if (Date.now() > until) return yield* Effect.die(new Error(`Not within ${within} ms: ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

const uniqueName = (prefix: string) => `conveyor-test-${prefix}-${Math.random().toString(36).slice(2, 10)}`

/**
 * Runs a consumer and a producer of `total` messages on one layer; `fault`
 * strikes once a third is processed. Every message sent must be processed
 * (at least once) and the queue must drain. Returns the push health seen.
 */
const flow = (fault: Effect.Effect<void>, options: { readonly total?: number; readonly visibilityTimeout?: Duration.Input } = {}) =>
  Effect.gen(function*() {
    const m = yield* Messaging.Messaging
    const q = uniqueQueue("flow")
    yield* Effect.acquireRelease(m.ensureQueue(q), () => Effect.ignore(m.deleteQueue(q)))
    const health: Array<MessageNotification.PushHealth["_tag"]> = []
    yield* m.pushHealth.pipe(Stream.runForEach((h) => Effect.sync(() => health.push(h._tag))), Effect.forkScoped)
    const processed = new Set<number>()
    yield* Consumer.run([q], (message) => Effect.sync(() => processed.add(message.payload as number)), {
      concurrency: 8,
      batchSize: 16,
      visibilityTimeout: options.visibilityTimeout ?? "30 seconds"
    }).pipe(Effect.forkScoped)
    const total = options.total ?? 600
    const sent = yield* Ref.make(0)
    const producer = yield* Effect.forEach(
      Array.from({ length: total }, (_, n) => n),
      (n) => Effect.andThen(m.send(q, n), Ref.update(sent, (k) => k + 1)).pipe(Effect.andThen(Effect.sleep("2 millis"))),
      { discard: true }
    ).pipe(Effect.forkChild)
    yield* eventually("a third is processed", Effect.sync(() => processed.size >= total / 3))
    yield* fault
    yield* Fiber.join(producer)
    assert.strictEqual(yield* Ref.get(sent), total)
    yield* eventually(`all ${total} processed`, Effect.sync(() => processed.size === total)).pipe(
      Effect.tapDefect(() => Effect.logError(`processed ${processed.size} of ${total}`))
    )
    yield* eventually("the queue is drained", Effect.orDie(Effect.map(m.stats(q), (s) => s.depth === 0)))
    return health
  })

describe("faults", () => {
  it.live("the blocked connection killed (CLIENT KILL) while messages flow: every message sent is processed", () => {
    const name = uniqueName("blocked")
    return Effect.gen(function*() {
      const admin = yield* raw()
      const health = yield* flow(Effect.gen(function*() {
        assert.isAtLeast(yield* killConnections(admin, name, "xreadgroup"), 1)
      }))
      assert.deepStrictEqual(health.slice(0, 3), ["Connected", "Degraded", "Reconnected"])
    }).pipe(Effect.scoped, Effect.provide(layer({ connectionName: name })))
  }, 60_000)

  it.live("every connection of the layer killed while messages flow: every message sent is processed", () => {
    const name = uniqueName("all")
    return Effect.gen(function*() {
      const admin = yield* raw()
      // A claim whose reply died with its connection returns after its visibility timeout.
      yield* flow(Effect.gen(function*() {
        assert.isAtLeast(yield* killConnections(admin, name), 2)
      }), { visibilityTimeout: "3 seconds" })
    }).pipe(Effect.scoped, Effect.provide(layer({ connectionName: name })))
  }, 60_000)

  it.live("the server paused (CLIENT PAUSE) while messages flow: every message sent is processed", () =>
    Effect.gen(function*() {
      const server = yield* privateServer
      const admin = yield* raw(server.url)
      yield* flow(Effect.gen(function*() {
        yield* Effect.promise(() => admin.sendCommand(["CLIENT", "PAUSE", "1500", "ALL"]))
      })).pipe(Effect.provide(layer({ url: Redacted.make(server.url) })))
    }).pipe(Effect.scoped), 60_000)

  it.live("the server crashed and restarted (append-only file, fsync always) mid-flow: every message sent is processed", () =>
    Effect.gen(function*() {
      const server = yield* privateServer
      const health = yield* flow(server.crashAndRestart, { visibilityTimeout: "3 seconds" }).pipe(
        Effect.provide(layer({ url: Redacted.make(server.url) }))
      )
      assert.deepStrictEqual(health.slice(0, 3), ["Connected", "Degraded", "Reconnected"])
    }).pipe(Effect.scoped), 60_000)

  it.live("a queue deleted under a live subscription ends the stream with QueueNotFound after every sent message", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("deleted")
      yield* m.ensureQueue(q)
      const processed = new Set<string>()
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch: 8 }).pipe(
        Stream.runForEach((n) =>
          n._tag === "Message" ? Effect.andThen(Effect.sync(() => processed.add(n.message.id)), m.ack(n.message.receipt)) : Effect.void
        ),
        Effect.forkChild
      )
      const ids = yield* m.sendBatch(q, Array.from({ length: 50 }, (_, n) => n))
      yield* eventually("all 50 processed", Effect.sync(() => processed.size === ids.length))
      yield* m.deleteQueue(q)
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "QueueNotFound")
      assert.include(error.message, q)
      assert.deepStrictEqual([...processed].sort(), [...ids].sort())
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("the server unreachable at start: ConnectionError once the retry schedule ends", () =>
    Effect.gen(function*() {
      const wrong = new URL(url)
      wrong.port = "1"
      const started = Date.now()
      const error = yield* Effect.flip(
        Layer.build(Redis.layer({ url: Redacted.make(wrong.toString()), reconnect: Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 3 })) }))
      )
      assert.strictEqual(error._tag, "ConnectionError")
      assert.include(error.message, "after 4 attempts")
      assert.include(error.message, "ECONNREFUSED")
      assert.isAtLeast(Date.now() - started, 300, "three spaced retries were waited for")
    }))

  it.live("a refused login (unknown user): a clear ConnectionError at once, without the password", () =>
    Effect.gen(function*() {
      const wrong = new URL(url)
      wrong.username = "conveyor-nobody"
      wrong.password = "s3cret-Pa55"
      const error = yield* Effect.flip(Layer.build(Redis.layer({ url: Redacted.make(wrong.toString()) })))
      assert.strictEqual(error._tag, "ConnectionError")
      assert.include(error.message, "after 1 attempt:", "refused logins are not retried")
      assert.notInclude(error.message, "s3cret-Pa55")
      assert.notInclude(JSON.stringify(error), "s3cret-Pa55")
      assert.notInclude(String(error), "s3cret-Pa55")
    }))
})
