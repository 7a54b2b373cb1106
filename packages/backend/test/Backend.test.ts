import { Backend } from "@conveyor/backend"
import { Messaging, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"

const withEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

/** Sends one message and reads it back through whatever provider the layer picked. */
const roundTrip = Effect.gen(function*() {
  const messaging = yield* Messaging.Messaging
  const queue = QueueName.makeUnsafe(`backend_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`)
  yield* messaging.ensureQueue(queue)
  yield* Effect.addFinalizer(() => Effect.ignore(messaging.deleteQueue(queue)))
  yield* messaging.send(queue, { hello: "backend" })
  const [message] = yield* messaging.receive(queue, { max: 1, visibilityTimeout: "30 seconds" })
  assert.isDefined(message)
  yield* messaging.ack(message.receipt)
  return { provider: messaging.provider, payload: message.payload }
})

describe("Backend.layerConfig", () => {
  it.effect("defaults to the in-memory provider when MESSAGING_BACKEND is unset", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(Effect.provide(Backend.layerConfig.pipe(Layer.provide(withEnv({})))))
      assert.deepStrictEqual(result, { provider: "memory", payload: { hello: "backend" } })
    }))

  it.effect("selects memory by name", () =>
    Effect.gen(function*() {
      const result = yield* roundTrip.pipe(
        Effect.provide(Backend.layerConfig.pipe(Layer.provide(withEnv({ MESSAGING_BACKEND: "memory" }))))
      )
      assert.strictEqual(result.provider, "memory")
    }))

  it.effect("refuses an unknown backend with a ConfigError naming the variable and the choices", () =>
    Effect.gen(function*() {
      const error = yield* roundTrip.pipe(
        Effect.provide(Backend.layerConfig.pipe(Layer.provide(withEnv({ MESSAGING_BACKEND: "kafka" })))),
        Effect.flip
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "MESSAGING_BACKEND")
      for (const name of Backend.names) assert.include(error.message, `"${name}"`)
    }))
})
