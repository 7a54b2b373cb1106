/**
 * Faults, each counting what was sent against what was processed, and bad
 * input that must be refused before it reaches the broker.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Redacted, Ref, Schedule, Stream } from "effect"
import { Consumer, type MessageNotification, Messaging } from "@conveyor/core"
import { RabbitMq } from "@conveyor/rabbitmq"
import { BadInput } from "@conveyor/testkit"
import { closeConnectionsNamed, layer, onRawChannel, raw, rawQueueExists, uniqueConnectionName, uniqueQueue, url, withQueues } from "./support.ts"

const eventually = (what: string, check: Effect.Effect<boolean>, within = 15_000) =>
  Effect.gen(function*() {
    const until = Date.now() + within
    while (!(yield* check)) {
      if (Date.now() > until) return yield* Effect.die(new Error(`Not within ${within} ms: ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

describe("faults", () => {
  it.live("the connection closed by the broker while messages flow: every message sent is processed", () => {
    const name = uniqueConnectionName("flow")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("flow")
      yield* withQueues(m, [q])
      const health: Array<MessageNotification.PushHealth["_tag"]> = []
      const reconnected = yield* Deferred.make<void>()
      yield* m.pushHealth.pipe(
        Stream.runForEach((h) =>
          Effect.andThen(
            Effect.sync(() => health.push(h._tag)),
            h._tag === "Reconnected" ? Deferred.succeed(reconnected, undefined) : Effect.void
          )
        ),
        Effect.forkScoped
      )
      const processed = new Set<number>()
      yield* Consumer.run([q], (message) => Effect.sync(() => processed.add(message.payload as number)), {
        concurrency: 8,
        batchSize: 16,
        visibilityTimeout: "30 seconds"
      }).pipe(Effect.forkScoped)
      const sent = yield* Ref.make(0)
      const sendNext = Effect.flatMap(Ref.get(sent), (n) => m.send(q, n)).pipe(
        Effect.andThen(Ref.update(sent, (k) => k + 1)),
        Effect.andThen(Effect.sleep("2 millis"))
      )
      // The producer shares the layer (and so the connection being closed): send retries through the reconnect.
      // It sends until the reconnect is reported and 200 more after: `rabbitmqctl` takes seconds to close the
      // connection, so a fixed count could all be sent and processed before the close lands.
      const producer = yield* Effect.gen(function*() {
        while (!(yield* Deferred.isDone(reconnected))) yield* sendNext
        yield* Effect.repeat(sendNext, { times: 199 })
      }).pipe(Effect.forkChild)
      yield* eventually("200 processed", Effect.sync(() => processed.size >= 200))
      assert.strictEqual(yield* closeConnectionsNamed(name), 1)
      yield* Fiber.join(producer)
      const total = yield* Ref.get(sent)
      yield* eventually(`all ${total} processed`, Effect.sync(() => processed.size === total))
      assert.deepStrictEqual([...processed].sort((a, b) => a - b), Array.from({ length: total }, (_, n) => n))
      assert.deepStrictEqual(health.slice(0, 3), ["Connected", "Degraded", "Reconnected"])
      yield* eventually("the queue is drained", Effect.orDie(Effect.map(m.stats(q), (s) => s.depth === 0)))
    }).pipe(Effect.scoped, Effect.provide(layer({ connectionName: name })))
  }, 30_000)

  it.live("a queue deleted under a live subscription ends the stream with QueueNotFound after every sent message", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      const q = uniqueQueue("deleted")
      yield* withQueues(m, [q])
      const processed = new Set<string>()
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch: 8 }).pipe(
        Stream.runForEach((n) =>
          n._tag === "Message"
            ? Effect.andThen(Effect.sync(() => processed.add(n.message.id)), m.ack(n.message.receipt))
            : Effect.void
        ),
        Effect.forkChild
      )
      const ids = yield* m.sendBatch(q, Array.from({ length: 50 }, (_, n) => n))
      yield* eventually("all 50 processed", Effect.sync(() => processed.size === ids.length))
      yield* onRawChannel(connection, (ch) => ch.deleteQueue(q))
      const exit = yield* Fiber.await(fiber)
      assert.strictEqual(exit._tag, "Failure")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "QueueNotFound")
      assert.include(error.message, q)
      assert.deepStrictEqual([...processed].sort(), [...ids].sort())
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("the broker unreachable at start: ConnectionError once the retry schedule ends", () =>
    Effect.gen(function*() {
      const wrongPort = new URL(url)
      wrongPort.port = "5673"
      const started = Date.now()
      const error = yield* Effect.flip(
        Layer.build(
          RabbitMq.layer({ url: Redacted.make(wrongPort.toString()), reconnect: Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 3 })) })
        )
      )
      const elapsed = Date.now() - started
      assert.strictEqual(error._tag, "ConnectionError")
      assert.include(error.message, "after 4 attempts")
      assert.include(error.message, "ECONNREFUSED")
      assert.isAtLeast(elapsed, 300, "three spaced retries were waited for")
      assert.notInclude(error.message, "guest:guest")
    }))

  it.live("wrong credentials: a clear ConnectionError at once, without the password", () =>
    Effect.gen(function*() {
      const wrong = new URL(url)
      wrong.password = "s3cret-Pa55"
      const error = yield* Effect.flip(
        Layer.build(RabbitMq.layer({ url: Redacted.make(wrong.toString()) }))
      )
      assert.strictEqual(error._tag, "ConnectionError")
      assert.include(error.message, "ACCESS_REFUSED")
      assert.include(error.message, "after 1 attempt:", "refused logins are not retried")
      assert.notInclude(error.message, "s3cret-Pa55")
      assert.notInclude(JSON.stringify(error), "s3cret-Pa55")
      assert.notInclude(String(error), "s3cret-Pa55")
    }))
})

describe("bad input", () => {
  // The names every provider refuses (the conformance suite asserts the error), and AMQP's own.
  const hostile = [...BadInput.hostileNames, "amq.gen-x", "a;b", "q\u0000", "héllo"]

  it.live("invalid queue names never reach AMQP: no queue is declared under them", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const connection = yield* raw
      for (const name of hostile) {
        for (const [operation, attempt] of BadInput.everyOperation(m, name)) {
          yield* Effect.flip(attempt).pipe(Effect.orElseSucceed(() => assert.fail(`${operation}(${JSON.stringify(name)}) succeeded`)))
        }
        if (name !== "" && !name.includes("\u0000")) {
          assert.isFalse(yield* rawQueueExists(connection, name), `${JSON.stringify(name)} was not declared`)
        }
      }
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a payload over the configured maximum is MessageTooLarge and nothing is sent", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("large")
      yield* withQueues(m, [q])
      yield* m.send(q, "x".repeat(254))
      const error = yield* Effect.flip(m.send(q, "x".repeat(255)))
      assert.strictEqual(error._tag, "MessageTooLarge")
      assert.strictEqual(error._tag === "MessageTooLarge" && error.bytes, 257)
      assert.strictEqual((yield* Effect.flip(m.sendBatch(q, ["ok", "x".repeat(300)])))._tag, "MessageTooLarge")
      assert.strictEqual((yield* m.stats(q)).depth, 1)
    }).pipe(Effect.scoped, Effect.provide(layer({ maxPayloadBytes: 256 }))))
})

