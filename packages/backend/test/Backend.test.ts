import { Backend } from "@conveyor/backend"
import { Messaging, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { buildApp } from "fauxqs"

// The real servers on 127.0.0.1; DATABASE_URL / RABBITMQ_URL / REDIS_URL override them.
const databaseUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const rabbitMqUrl = process.env["RABBITMQ_URL"] ?? "amqp://guest:guest@127.0.0.1:5672"
const redisUrl = process.env["REDIS_URL"] ?? Backend.defaultRedisUrl

/** An SQS emulator on loopback for the test's scope (never fauxqs's own starters: they bind 0.0.0.0). */
const sqsEmulator = Effect.acquireRelease(
  Effect.promise(async () => {
    const app = buildApp({ logger: false, host: "127.0.0.1" })
    const address = await app.listen({ host: "127.0.0.1", port: 0 })
    return { app, endpoint: address.replace("localhost", "127.0.0.1") }
  }),
  ({ app }) => Effect.promise(() => app.close())
)

/** `Backend.layerConfig` reading exactly `env`, nothing from the process. */
const selected = (env: Record<string, string>) =>
  Backend.layerConfig.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

/** Sends one message and reads it back through whatever provider the layer picked; deletes its queue. */
const roundTrip = Effect.scoped(Effect.gen(function*() {
  const messaging = yield* Messaging.Messaging
  const queue = QueueName.makeUnsafe(`backend_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`)
  yield* messaging.ensureQueue(queue)
  yield* Effect.addFinalizer(() => Effect.ignore(messaging.deleteQueue(queue)))
  yield* messaging.send(queue, { hello: "backend" }, { headers: { via: "switch" } })
  const [message] = yield* messaging.receive(queue, { max: 1, visibilityTimeout: "30 seconds" })
  assert.isDefined(message)
  yield* messaging.ack(message.receipt)
  const left = yield* messaging.receive(queue, { max: 1, visibilityTimeout: "30 seconds" })
  return { provider: messaging.provider, payload: message.payload, headers: message.headers, left: left.length }
}))

const expected = (provider: string) => ({
  provider,
  payload: { hello: "backend" },
  headers: { via: "switch" },
  left: 0
})

describe("Backend.layerConfig", () => {
  it.effect("defaults to the in-memory provider when MESSAGING_BACKEND is unset", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* roundTrip.pipe(Effect.provide(selected({}))), expected("memory"))
    }))

  it.effect("selects memory by name", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(Effect.provide(selected({ MESSAGING_BACKEND: "memory" })))
      assert.deepStrictEqual(result, expected("memory"))
    }))

  it.live("selects PGMQ with DATABASE_URL: a round trip on the real server", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(
        Effect.provide(selected({ MESSAGING_BACKEND: "pgmq", DATABASE_URL: databaseUrl }))
      )
      assert.deepStrictEqual(result, expected("pgmq"))
    }), 30_000)

  it.live("selects RabbitMQ with RABBITMQ_URL: a round trip on the real broker", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(
        Effect.provide(selected({ MESSAGING_BACKEND: "rabbitmq", RABBITMQ_URL: rabbitMqUrl }))
      )
      assert.deepStrictEqual(result, expected("rabbitmq"))
    }), 30_000)

  it.live("selects Redis with REDIS_URL: a round trip on the real server", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(Effect.provide(selected({ MESSAGING_BACKEND: "redis", REDIS_URL: redisUrl })))
      assert.deepStrictEqual(result, expected("redis"))
    }), 30_000)

  it.live("selects Redis without REDIS_URL: the local server", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(Effect.provide(selected({ MESSAGING_BACKEND: "redis" })))
      assert.deepStrictEqual(result, expected("redis"))
    }), 30_000)

  it.live("selects SQS with SQS_ENDPOINT and a key pair: a round trip on an emulator", () =>
    Effect.gen(function*() {
      const { endpoint } = yield* sqsEmulator
      const result = yield* roundTrip.pipe(
        Effect.provide(selected({
          MESSAGING_BACKEND: "sqs",
          SQS_ENDPOINT: endpoint,
          AWS_REGION: "eu-west-1",
          AWS_ACCESS_KEY_ID: "test",
          AWS_SECRET_ACCESS_KEY: "test-secret"
        }))
      )
      assert.deepStrictEqual(result, expected("sqs"))
    }), 30_000)

  it.live("SQS: an unreachable endpoint is a ConnectionError that never shows the secret key", () =>
    Effect.gen(function*() {
      const secret = "s3cr3t-never-shown"
      // Port 9 (discard) is closed on loopback: the connection is refused.
      const error = yield* roundTrip.pipe(
        Effect.provide(selected({
          MESSAGING_BACKEND: "sqs",
          SQS_ENDPOINT: "http://127.0.0.1:9",
          AWS_ACCESS_KEY_ID: "test",
          AWS_SECRET_ACCESS_KEY: secret
        })),
        Effect.flip
      )
      assert.strictEqual(error._tag, "ConnectionError")
      assert.notInclude(JSON.stringify(error), secret)
      assert.notInclude(String(error), secret)
    }), 30_000)

  it.effect("refuses an unknown backend with a ConfigError naming the variable and the choices", () =>
    Effect.gen(function*() {
      const error = yield* roundTrip.pipe(Effect.provide(selected({ MESSAGING_BACKEND: "kafka" })), Effect.flip)
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "MESSAGING_BACKEND")
      for (const name of Backend.names) assert.include(error.message, `"${name}"`)
    }))

  for (const [backend, variable] of [["pgmq", "DATABASE_URL"], ["rabbitmq", "RABBITMQ_URL"]] as const) {
    it.effect(`refuses ${backend} without ${variable}, before connecting to anything`, () =>
      Effect.gen(function*() {
        const error = yield* roundTrip.pipe(Effect.provide(selected({ MESSAGING_BACKEND: backend })), Effect.flip)
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.message, variable)
      }))
  }
})
