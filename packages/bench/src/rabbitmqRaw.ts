/**
 * The raw ceiling on RabbitMQ: amqplib on its own connection, a durable
 * classic queue, persistent messages carrying what Conveyor's guarantees
 * need on the wire too (message id, timestamp, `mandatory`), each send
 * awaiting its publisher confirm. Consuming: one channel with
 * `prefetch(concurrency)`, the JSON body parsed, `ack` per message; in W3
 * the next hop is published on the confirm channel and the message acked
 * once that publish is confirmed (what a handler that sends then acks does).
 */
import amqp from "amqplib"
import { Effect } from "effect"
import type { Connection, Hop, Pipe, Subject } from "./Pipe.ts"
import { tag } from "./Stats.ts"

export const url = process.env["RABBITMQ_URL"] ?? "amqp://guest:guest@127.0.0.1:5672"

const properties = (): amqp.Options.Publish => ({
  persistent: true,
  mandatory: true,
  contentType: "application/json",
  messageId: crypto.randomUUID(),
  timestamp: Math.floor(Date.now() / 1000)
})

const publish = (channel: amqp.ConfirmChannel, queue: string, hop: Hop) =>
  new Promise<void>((resolve, reject) =>
    channel.sendToQueue(queue, Buffer.from(JSON.stringify(hop)), properties(), (error) => error ? reject(error) : resolve())
  )

const pipeOn = (connection: amqp.ChannelModel, publisher: amqp.ConfirmChannel, queue: string): Pipe => ({
  send: (hop) => Effect.promise(() => publish(publisher, queue, hop)),
  sendBatch: (hops) => Effect.promise(() => Promise.all(hops.map((hop) => publish(publisher, queue, hop)))),
  consume: (concurrency, step, settled) =>
    Effect.gen(function*() {
      const channel = yield* Effect.acquireRelease(
        Effect.promise(() => connection.createChannel()),
        (c) => Effect.promise(() => c.close().catch(() => undefined))
      )
      yield* Effect.promise(() => channel.prefetch(concurrency))
      yield* Effect.promise(() =>
        channel.consume(queue, (message) => {
          if (message === null) return
          const next = step(JSON.parse(message.content.toString("utf8")) as Hop)
          if (next === undefined) {
            channel.ack(message)
            settled()
          } else {
            void publish(publisher, queue, next).then(() => {
              channel.ack(message)
              settled()
            })
          }
        })
      )
    })
})

export const subject: Subject = {
  name: "raw",
  role: "raw",
  config: "amqplib, one connection; confirm channel for sends; consume with prefetch = handlers, ack per message",
  connect: Effect.gen(function*() {
    const connection = yield* Effect.acquireRelease(
      Effect.promise(() => amqp.connect(url, { noDelay: true })),
      (c) => Effect.promise(() => c.close().catch(() => undefined))
    )
    const publisher = yield* Effect.promise(() => connection.createConfirmChannel())
    const result: Connection = {
      open: (label) =>
        Effect.gen(function*() {
          const queue = `bench_${tag()}_${label}_raw`
          yield* Effect.acquireRelease(
            Effect.promise(() => publisher.assertQueue(queue, { durable: true })),
            () => Effect.promise(() => publisher.deleteQueue(queue).catch(() => undefined))
          )
          return pipeOn(connection, publisher, queue)
        })
    }
    return result
  })
}
