/**
 * Shared by the RabbitMQ tests: the broker URL (`RABBITMQ_URL` overrides the
 * local default), layers whose connections carry a unique name so a test can
 * close exactly its own, unique queue names, and raw amqplib access for
 * arranging what the provider must cope with.
 */
import { TcpProxy } from "@conveyor/testkit"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import amqp from "amqplib"
import { Effect, Redacted, Schedule } from "effect"
import { type Messaging, QueueName } from "@conveyor/core"
import { RabbitMq } from "@conveyor/rabbitmq"

export const url = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672"

const run = promisify(execFile)

const suffix = () => Math.random().toString(36).slice(2, 10)

export const uniqueQueue = (prefix: string): QueueName.QueueName => QueueName.makeUnsafe(`t_${prefix}_${suffix()}`)

export const uniqueConnectionName = (prefix: string) => `conveyor-test-${prefix}-${suffix()}`

/** Quick retries so fault tests do not wait on the production backoff. */
export const fastReconnect = Schedule.exponential("50 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 8 }))

export const layer = (options: Partial<RabbitMq.RabbitMqOptions> = {}) =>
  RabbitMq.layer({
    url: Redacted.make(url),
    connectionName: uniqueConnectionName("rabbitmq"),
    reconnect: fastReconnect,
    ...options
  })

/** Ensures the queues for the test and deletes them (with their topology) when its scope closes. */
export const withQueues = (messaging: Messaging.Messaging["Service"], queues: ReadonlyArray<QueueName.QueueName>, options?: Messaging.QueueOptions) =>
  Effect.acquireRelease(
    Effect.forEach(queues, (queue) => messaging.ensureQueue(queue, options), { discard: true }),
    () => Effect.forEach(queues, (queue) => Effect.ignore(messaging.deleteQueue(queue)), { discard: true })
  )

/** A raw amqplib connection for arranging and inspecting, closed with the scope. */
export const raw = Effect.acquireRelease(
  Effect.promise(async () => {
    const connection = await amqp.connect(url)
    connection.on("error", () => {})
    return connection
  }),
  (connection) => Effect.promise(() => connection.close().catch(() => undefined))
)

/** Runs one operation on a fresh raw channel (a 404 then only closes that channel). */
export const onRawChannel = <A>(connection: amqp.ChannelModel, f: (ch: amqp.Channel) => Promise<A>) =>
  Effect.promise(async () => {
    const ch = await connection.createChannel()
    ch.on("error", () => {})
    try {
      return await f(ch)
    } finally {
      await ch.close().catch(() => undefined)
    }
  })

export const rawQueueExists = (connection: amqp.ChannelModel, queue: string) =>
  Effect.promise(async () => {
    const ch = await connection.createChannel()
    ch.on("error", () => {})
    try {
      await ch.checkQueue(queue)
      await ch.close()
      return true
    } catch {
      return false
    }
  })

/** Closes (broker-side) every connection whose `connection_name` is `name`; returns how many. */
export const closeConnectionsNamed = (name: string) =>
  Effect.promise(async () => {
    const { stdout } = await run("rabbitmqctl", ["list_connections", "pid", "client_properties", "-q", "--no-table-headers"])
    const targets = stdout.split("\n").filter((line) => line.includes(`{"connection_name","${name}"}`)).map((line) =>
      line.split("\t")[0]!
    )
    for (const target of targets) await run("rabbitmqctl", ["close_connection", target, "conveyor fault test"])
    return targets.length
  })

/** A broker outage as the client sees it, without touching the broker other suites share. */
export const brokerProxy = TcpProxy.make(url)
