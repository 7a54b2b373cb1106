/**
 * Shared by the SQS tests: a fauxqs emulator started in-process on loopback
 * (`buildApp` + `listen` on 127.0.0.1 — never `startFauxqs` or its CLI, which
 * bind 0.0.0.0), the provider's layer pointed at it, and unique queue names.
 */
import { QueueName } from "@conveyor/core"
import { Sqs } from "@conveyor/sqs"
import { Effect, Layer, Redacted, Schedule, type Scope } from "effect"
import { buildApp } from "fauxqs"

export interface Emulator {
  readonly endpoint: string
  readonly port: number
  /** Closes the server: its queues and messages are gone with it. */
  readonly stop: Effect.Effect<void>
  /** A fresh server on the same port, with `queues` (and their dead-letter queues) created before it listens. */
  readonly restart: (queues: ReadonlyArray<QueueName.QueueName>) => Effect.Effect<void>
}

type App = ReturnType<typeof buildApp>

const listen = async (port: number, queues: ReadonlyArray<string>): Promise<{ app: App; port: number }> => {
  const app = buildApp({ logger: false, host: "127.0.0.1" })
  await app.ready()
  for (const name of queues) {
    for (const queue of [`${name}_dlq`, name]) {
      await app.inject({
        method: "POST",
        url: "/",
        headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.CreateQueue" },
        payload: JSON.stringify({ QueueName: queue })
      })
    }
  }
  const address = await app.listen({ host: "127.0.0.1", port })
  return { app, port: Number(new URL(address).port) }
}

/** An emulator for the scope of a test or suite. */
export const emulator: Effect.Effect<Emulator, never, Scope.Scope> = Effect.gen(function*() {
  let current = yield* Effect.promise(() => listen(0, []))
  const port = current.port
  const stop = Effect.promise(() => current.app.close())
  yield* Effect.addFinalizer(() => stop)
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop,
    restart: (queues) => Effect.promise(async () => (current = await listen(port, queues))).pipe(Effect.asVoid)
  }
})

export const credentials: Sqs.Credentials = { accessKeyId: "test", secretAccessKey: Redacted.make("test-secret") }

/** Quick retries so fault tests do not wait on the production backoff. */
export const fastReconnect = Schedule.exponential("50 millis").pipe(Schedule.jittered)

export const options = (endpoint: string, extra: Partial<Sqs.SqsOptions> = {}): Sqs.SqsOptions => ({
  endpoint,
  region: "us-east-1",
  credentials,
  reconnect: fastReconnect,
  ...extra
})

/** The provider against an emulator of its own, both closed with the layer. */
export const layer = (extra: Partial<Sqs.SqsOptions> = {}) =>
  Layer.unwrap(Effect.map(emulator, (e) => Sqs.layer(options(e.endpoint, extra))))

const suffix = () => Math.random().toString(36).slice(2, 10)

export const uniqueQueue = (prefix: string): QueueName.QueueName => QueueName.makeUnsafe(`t_${prefix}_${suffix()}`)
