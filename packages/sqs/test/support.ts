/**
 * Shared by the SQS tests: a fauxqs emulator started in-process on loopback
 * (`buildApp` + `listen` on 127.0.0.1 — never `startFauxqs` or its CLI, which
 * bind 0.0.0.0), the provider's layer pointed at it, and unique queue names.
 */
import { SQSClient } from "@aws-sdk/client-sqs"
import { Messaging, QueueName } from "@conveyor/core"
import { Sqs } from "@conveyor/sqs"
import { Context, Duration, Effect, Layer, Redacted, Schedule, type Scope } from "effect"
import { buildApp } from "fauxqs"

export interface Emulator {
  readonly endpoint: string
  readonly port: number
  /** How many requests of `action` (e.g. `SendMessageBatch`) the server has answered; every request when absent. */
  readonly calls: (action?: string) => number
  /** Closes the server and cuts its connections: its queues and messages are gone with it. */
  readonly stop: Effect.Effect<void>
  /** A fresh server on the same port, with `queues` (and their dead-letter queues) created before it listens. */
  readonly restart: (queues: ReadonlyArray<QueueName.QueueName>) => Effect.Effect<void>
}

type App = ReturnType<typeof buildApp>

const listen = async (
  port: number,
  queues: ReadonlyArray<string>,
  calls: Map<string, number>
): Promise<{ app: App; port: number }> => {
  const app = buildApp({ logger: false, host: "127.0.0.1" })
  app.addHook("onRequest", async (request) => {
    const target = String(request.headers["x-amz-target"] ?? "")
    const action = target.slice(target.indexOf(".") + 1)
    calls.set(action, (calls.get(action) ?? 0) + 1)
  })
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
  const calls = new Map<string, number>()
  let current = yield* Effect.promise(() => listen(0, [], calls))
  const port = current.port
  // Abruptly, as a crash would: connections in the middle of a long poll are cut too.
  const stop = Effect.promise(() => {
    const closing = current.app.close()
    current.app.server.closeAllConnections()
    return closing
  })
  yield* Effect.addFinalizer(() => stop)
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    calls: (action) => action === undefined ? [...calls.values()].reduce((a, b) => a + b, 0) : calls.get(action) ?? 0,
    stop,
    restart: (queues) => Effect.promise(async () => (current = await listen(port, queues, calls))).pipe(Effect.asVoid)
  }
})

export const credentials: Sqs.Credentials = { accessKeyId: "test", secretAccessKey: Redacted.make("test-secret") }

/** Quick retries so fault tests do not wait on the production backoff. */
export const fastReconnect = Schedule.exponential("50 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(500)))),
  Schedule.jittered,
  Schedule.upTo({ times: 60 })
)

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

/** A provider on `endpoint` for the current scope. */
export const provider = (endpoint: string, extra: Partial<Sqs.SqsOptions> = {}) =>
  Effect.map(Layer.build(Sqs.layer(options(endpoint, extra))), (context) => Context.get(context, Messaging.Messaging))

/** A raw SDK client on the emulator, for arranging and inspecting behind the provider's back. */
export const rawClient = (endpoint: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new SQSClient({ endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test-secret" } })
    ),
    (client) => Effect.sync(() => client.destroy())
  )

/** Ensures the queues and deletes them (with their dead-letter queues) when the scope closes. */
export const withQueues = (messaging: Messaging.Messaging["Service"], queues: ReadonlyArray<QueueName.QueueName>) =>
  Effect.acquireRelease(
    Effect.forEach(queues, (queue) => messaging.ensureQueue(queue), { discard: true }),
    () => Effect.forEach(queues, (queue) => Effect.ignore(messaging.deleteQueue(queue)), { discard: true })
  )
