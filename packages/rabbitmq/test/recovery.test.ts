/**
 * Recovery seen through a proxy the test can take down (the shared broker is
 * never touched): a broker outage while messages flow, an outage longer than
 * the reconnect schedule; and configuration (heartbeat, layerConfig).
 */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Context, Effect, Fiber, Layer, Redacted, Schedule, Stream } from "effect"
import { Consumer, type MessageNotification, Messaging } from "@conveyor/core"
import { RabbitMq } from "@conveyor/rabbitmq"
import { brokerProxy, fastReconnect, layer, uniqueConnectionName, uniqueQueue, url, withQueues } from "./support.ts"

const eventually = (what: string, check: Effect.Effect<boolean>, within = 15_000) =>
  Effect.gen(function*() {
    const until = Date.now() + within
    while (!(yield* check)) {
      if (Date.now() > until) return yield* Effect.die(new Error(`Not within ${within} ms: ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

/** The provider on `layer`, built in the test's scope. */
const build = (provider: Layer.Layer<Messaging.Messaging, unknown>) =>
  Effect.map(Layer.build(provider), (context) => Context.get(context, Messaging.Messaging))

describe("recovery", () => {
  it.live("a broker outage while messages flow: the consumer resumes, the producer waits, nothing is lost", () =>
    Effect.gen(function*() {
      const proxy = yield* brokerProxy
      const m = yield* build(RabbitMq.layer({ url: Redacted.make(proxy.url), reconnect: fastReconnect }))
      const q = uniqueQueue("outage")
      yield* withQueues(m, [q])
      const health: Array<MessageNotification.PushHealth["_tag"]> = []
      yield* m.pushHealth.pipe(Stream.runForEach((h) => Effect.sync(() => health.push(h._tag))), Effect.forkScoped)
      const processed = new Set<number>()
      yield* Consumer.run([q], (message) => Effect.sync(() => processed.add(message.payload as number)), {
        concurrency: 4,
        visibilityTimeout: "30 seconds"
      }).pipe(Effect.provideService(Messaging.Messaging, m), Effect.forkScoped)
      const total = 300
      const producer = yield* Effect.forEach(
        Array.from({ length: total }, (_, n) => n),
        (n) => Effect.andThen(m.send(q, n), Effect.sleep("2 millis")),
        { discard: true }
      ).pipe(Effect.forkChild)
      yield* eventually("some are processed", Effect.sync(() => processed.size >= 50))
      yield* proxy.down
      yield* eventually("the outage is noticed", Effect.sync(() => health.includes("Degraded")))
      yield* Effect.sleep("300 millis")
      yield* proxy.up
      yield* eventually(`all ${total} processed`, Effect.sync(() => processed.size === total))
      yield* Fiber.join(producer)
      assert.deepStrictEqual(health.slice(0, 3), ["Connected", "Degraded", "Reconnected"])
    }), 30_000)

  it.live("an outage longer than the schedule: ConnectionError at once, then recovery on the next call", () =>
    Effect.gen(function*() {
      const proxy = yield* brokerProxy
      const m = yield* build(
        RabbitMq.layer({ url: Redacted.make(proxy.url), reconnect: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 3 })) })
      )
      const q = uniqueQueue("down")
      yield* withQueues(m, [q])
      yield* proxy.down
      // The schedule gives up after ~150 ms: from then on calls fail fast instead of hanging.
      yield* Effect.sleep("600 millis")
      const started = Date.now()
      const error = yield* Effect.flip(m.send(q, "while down"))
      assert.strictEqual(error._tag, "ConnectionError")
      assert.isBelow(Date.now() - started, 2_000)
      assert.isFalse((yield* m.healthCheck).healthy)
      yield* proxy.up
      yield* eventually(
        "a later call reconnects",
        Effect.map(Effect.result(m.send(q, "after")), (result) => result._tag === "Success")
      )
      const [message] = yield* m.receive(q, { max: 10, visibilityTimeout: "30 seconds" })
      assert.strictEqual(message?.payload, "after")
      assert.isTrue((yield* m.healthCheck).healthy)
    }), 30_000)

  it.live("the heartbeat is negotiated as configured", () => {
    const name = uniqueConnectionName("heartbeat")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      assert.isTrue((yield* m.healthCheck).healthy)
      const { stdout } = yield* Effect.promise(() =>
        promisify(execFile)("rabbitmqctl", ["list_connections", "client_properties", "timeout", "-q", "--no-table-headers"])
      )
      const line = stdout.split("\n").find((l) => l.includes(`{"connection_name","${name}"}`))
      assert.isDefined(line)
      assert.strictEqual(line!.split("\t").at(-1), "3")
    }).pipe(Effect.scoped, Effect.provide(layer({ connectionName: name, heartbeat: "3 seconds" })))
  })

  it.live("layerConfig reads RABBITMQ_URL (the backend switch's call) and fails clearly without it", () =>
    Effect.gen(function*() {
      const configured = RabbitMq.layerConfig({ url: Config.Redacted("RABBITMQ_URL") })
      const m = yield* build(configured.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({ RABBITMQ_URL: url })))))
      assert.isTrue((yield* m.healthCheck).healthy)
      const missing = yield* Effect.flip(
        build(configured.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({})))))
      )
      assert.include(String(missing), "RABBITMQ_URL")
    }))
})
