/**
 * The RabbitMQ suite, Conveyor next to raw amqplib, both against the same
 * local broker in the same run, with the same prefetch and message size
 * (a JSON payload of ~256 bytes, durable classic queues, persistent messages):
 * - confirmed publish throughput: `send` with 64 sends in flight, each
 *   awaiting its publisher confirm, and `sendBatch` of 64 one batch after
 *   another; raw: a confirm channel with a window of 64 outstanding
 *   `sendToQueue` callbacks, serializing each payload with JSON.stringify.
 *   Raw messages carry what Conveyor's guarantees need on the wire too (a
 *   message id, a timestamp, `mandatory` so an unroutable message is not lost
 *   silently): each costs the broker work, and a raw publisher without them
 *   gives weaker guarantees than the one it is compared with.
 * - consume+ack throughput of a preloaded queue, prefetch 64: through
 *   `Consumer.run` (concurrency 64, batchSize 64, no-op handler) and through
 *   `subscribe` + `ack`; raw: `consume` with `prefetch(64)`, `ack` in the callback.
 * - latency send → handler start, one message at a time: `send` then
 *   `Consumer.run`'s handler (which starts with the payload decoded); raw:
 *   `sendToQueue` then the consume callback, once it has parsed the body.
 * Every measurement runs on its own fresh queue (deleted afterwards), after a
 * short warm-up; each side gets its own connection.
 */
import amqp from "amqplib"
import { Consumer, Messaging, QueueName } from "@conveyor/core"
import { RabbitMq } from "@conveyor/rabbitmq"
import { Deferred, Effect, Queue, Redacted, Stream } from "effect"
import type { Row } from "./Report.ts"
import { median, progress as progressOf, rate, summary, tag } from "./Stats.ts"

const suite = "rabbitmq"
const progress = progressOf(suite)
const url = process.env["RABBITMQ_URL"] ?? "amqp://guest:guest@127.0.0.1:5672"
const prefetch = 64
const publishWindow = 64
const publishMessages = 4_000
const drainMessages = 6_000
/** Each throughput is measured this many times, ours and raw alternating; the median is reported. */
const rounds = 5
/** A drain that has not finished by then is reported at the rate it reached (and flagged on stderr). */
const drainLimit = "20 seconds"
const latencySamples = 300
const latencyWarmup = 30

const payload = { kind: "bench", text: "x".repeat(220), n: 0 }

/** The properties of a raw message: the same as Conveyor puts on the wire (see the header). */
const rawProperties = (): amqp.Options.Publish => ({
  persistent: true,
  mandatory: true,
  contentType: "application/json",
  messageId: crypto.randomUUID(),
  timestamp: Math.floor(Date.now() / 1000)
})

/** Runs `ours` and `raw` `rounds` times, alternating which goes first, and keeps the medians. */
const alternate = <E, R>(ours: Effect.Effect<number, E, R>, raw: Effect.Effect<number, E, R>) =>
  Effect.gen(function*() {
    const mine: Array<number> = []
    const theirs: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        mine.push(yield* ours)
        theirs.push(yield* raw)
      } else {
        theirs.push(yield* raw)
        mine.push(yield* ours)
      }
    }
    return { ours: median(mine), raw: median(theirs) }
  })

/** A raw connection and confirm channel, closed with the scope. */
const rawConnection = Effect.acquireRelease(
  Effect.promise(async () => {
    const connection = await amqp.connect(url, { noDelay: true })
    const channel = await connection.createConfirmChannel()
    return { connection, channel }
  }),
  ({ connection }) => Effect.promise(() => connection.close().catch(() => undefined))
)

const withQueue = <A, E, R>(name: string, use: (queue: QueueName.QueueName) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.flatMap(Messaging.Messaging, (m) => {
      const queue = QueueName.makeUnsafe(`bench_${name}_${tag()}`)
      return Effect.as(m.ensureQueue(queue), queue)
    }),
    use,
    (queue) => Effect.ignore(Effect.flatMap(Messaging.Messaging, (m) => m.deleteQueue(queue)))
  )

/** Publishes `count` messages with at most `window` unconfirmed, on a raw confirm channel. */
const rawPublish = (channel: amqp.ConfirmChannel, queue: string, count: number, window: number) =>
  Effect.promise(() =>
    new Promise<void>((resolve, reject) => {
      let sent = 0
      let confirmed = 0
      const pump = () => {
        while (sent < count && sent - confirmed < window) {
          const content = Buffer.from(JSON.stringify({ ...payload, n: sent++ }))
          channel.sendToQueue(queue, content, rawProperties(), (err) => {
            if (err) return reject(err)
            if (++confirmed === count) resolve()
            else pump()
          })
        }
      }
      pump()
    })
  )

const conveyorPublish = (queue: QueueName.QueueName, count: number) =>
  Effect.flatMap(Messaging.Messaging, (m) =>
    Effect.forEach(Array.from({ length: count }, (_, n) => n), (n) => m.send(queue, { ...payload, n }), {
      concurrency: publishWindow,
      discard: true
    }))

const conveyorPublishBatches = (queue: QueueName.QueueName, count: number) =>
  Effect.flatMap(Messaging.Messaging, (m) =>
    Effect.forEach(
      Array.from({ length: Math.ceil(count / publishWindow) }, (_, b) => b),
      (b) => m.sendBatch(queue, Array.from({ length: publishWindow }, (_, i) => ({ ...payload, n: b * publishWindow + i }))),
      { discard: true }
    ))

const timed = <E, R>(name: string, publish: (queue: QueueName.QueueName, count: number) => Effect.Effect<void, E, R>) =>
  withQueue(name, (queue) =>
    Effect.suspend(() => {
      const startedAt = performance.now()
      return Effect.map(publish(queue, publishMessages), () => rate(publishMessages, startedAt))
    }))

const publishThroughput = Effect.scoped(Effect.gen(function*() {
  const { channel } = yield* rawConnection
  yield* withQueue("pubwarm", (queue) => Effect.andThen(conveyorPublish(queue, 500), rawPublish(channel, queue, 500, publishWindow)))
  const raw = (queue: QueueName.QueueName, count: number) => rawPublish(channel, queue, count, publishWindow)
  const sends = yield* alternate(timed("pub", conveyorPublish), timed("pubraw", raw))
  const batches = yield* alternate(timed("pubbatch", conveyorPublishBatches), timed("pubraw", raw))
  return { sends, batches }
}))

/** Drains a preloaded queue with raw amqplib: consume, prefetch, ack in the callback. */
const rawDrain = (connection: amqp.ChannelModel, queue: string, count: number) =>
  Effect.promise(async () => {
    const channel = await connection.createChannel()
    await channel.prefetch(prefetch)
    const startedAt = performance.now()
    let handled = 0
    await new Promise<void>((resolve) => {
      void channel.consume(queue, (message) => {
        if (message === null) return
        JSON.parse(message.content.toString("utf8"))
        channel.ack(message)
        if (++handled === count) resolve()
      })
    })
    const result = rate(count, startedAt)
    await channel.close()
    return result
  })

const viaConsumerRun = (queue: QueueName.QueueName, count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const done = yield* Deferred.make<void>()
    let handled = 0
    const startedAt = performance.now()
    yield* Consumer.run([queue], () => Effect.suspend(() => (++handled === count ? Deferred.succeed(done, undefined) : Effect.void)), {
      concurrency: prefetch,
      batchSize: prefetch,
      visibilityTimeout: "60 seconds"
    }).pipe(Effect.forkScoped)
    return yield* Deferred.await(done).pipe(
      Effect.map(() => rate(count, startedAt)),
      Effect.timeoutOrElse({
        duration: drainLimit,
        orElse: () => Effect.as(progress(`Consumer.run stalled after ${handled} of ${count}`), rate(handled, startedAt))
      })
    )
  }))

const viaSubscribe = (queue: QueueName.QueueName, count: number) =>
  Effect.gen(function*() {
    const m = yield* Messaging.Messaging
    const startedAt = performance.now()
    yield* m.subscribe([queue], { visibilityTimeout: "60 seconds", prefetch }).pipe(
      Stream.mapEffect((n) => n._tag === "Message" ? m.ack(n.message.receipt) : Effect.void),
      Stream.take(count),
      Stream.runDrain
    )
    return rate(count, startedAt)
  })

const drainThroughput = Effect.scoped(Effect.gen(function*() {
  const { channel, connection } = yield* rawConnection
  const preloaded = <A, E, R>(name: string, measure: (queue: QueueName.QueueName) => Effect.Effect<A, E, R>) =>
    withQueue(name, (queue) => Effect.andThen(rawPublish(channel, queue, drainMessages, 256), measure(queue)))
  // Warm-up: one small drain per path.
  yield* withQueue("warm", (queue) =>
    Effect.gen(function*() {
      yield* rawPublish(channel, queue, 1000, 256)
      yield* viaConsumerRun(queue, 500)
      yield* viaSubscribe(queue, 300)
      yield* rawDrain(connection, queue, 200)
    }))
  yield* progress("consume+ack: Consumer.run vs raw")
  const run = yield* alternate(
    preloaded("run", (queue) => viaConsumerRun(queue, drainMessages)),
    preloaded("raw", (queue) => rawDrain(connection, queue, drainMessages))
  )
  yield* progress("consume+ack: subscribe vs raw")
  const subscribed = yield* alternate(
    preloaded("sub", (queue) => viaSubscribe(queue, drainMessages)),
    preloaded("raw", (queue) => rawDrain(connection, queue, drainMessages))
  )
  return { run, subscribed }
}))

const conveyorLatency = (queue: QueueName.QueueName) =>
  Effect.scoped(Effect.gen(function*() {
    const m = yield* Messaging.Messaging
    const arrivals = yield* Queue.unbounded<number>()
    yield* Consumer.run([queue], () => Queue.offer(arrivals, performance.now()), { visibilityTimeout: "60 seconds" })
      .pipe(Effect.forkScoped)
    yield* Effect.sleep("300 millis")
    const samples: Array<number> = []
    for (let i = 0; i < latencyWarmup + latencySamples; i++) {
      const sentAt = performance.now()
      yield* m.send(queue, { ...payload, n: i })
      const arrived = yield* Queue.take(arrivals)
      if (i >= latencyWarmup) samples.push(arrived - sentAt)
    }
    return samples
  }))

const rawLatency = (queue: string) =>
  Effect.scoped(Effect.gen(function*() {
    const { channel, connection } = yield* rawConnection
    const consumer = yield* Effect.promise(() => connection.createChannel())
    yield* Effect.promise(() => consumer.prefetch(prefetch))
    const arrivals = yield* Queue.unbounded<number>()
    yield* Effect.promise(() =>
      consumer.consume(queue, (message) => {
        if (message === null) return
        JSON.parse(message.content.toString("utf8"))
        Queue.offerUnsafe(arrivals, performance.now())
        consumer.ack(message)
      })
    )
    const samples: Array<number> = []
    for (let i = 0; i < latencyWarmup + latencySamples; i++) {
      const sentAt = performance.now()
      yield* Effect.promise(() =>
        new Promise<void>((resolve, reject) =>
          channel.sendToQueue(queue, Buffer.from(JSON.stringify({ ...payload, n: i })), rawProperties(), (err) => err ? reject(err) : resolve())
        )
      )
      const arrived = yield* Queue.take(arrivals)
      if (i >= latencyWarmup) samples.push(arrived - sentAt)
    }
    return samples
  }))

const measure = Effect.gen(function*() {
  yield* progress("confirmed publish throughput")
  const publish = yield* publishThroughput
  const drain = yield* drainThroughput
  yield* progress("latency send → handler")
  const ours = summary(yield* withQueue("lat", conveyorLatency))
  const raw = summary(yield* withQueue("latraw", rawLatency))
  const bar = "≥ 0.8× raw"
  return [
    { suite, metric: `confirmed publish, send, ${publishWindow} in flight`, unit: "msg/s", conveyor: publish.sends.ours, raw: publish.sends.raw, higherIsBetter: true },
    { suite, metric: `confirmed publish, sendBatch of ${publishWindow}`, unit: "msg/s", conveyor: publish.batches.ours, raw: publish.batches.raw, higherIsBetter: true },
    { suite, metric: `consume+ack, Consumer.run, prefetch ${prefetch}`, unit: "msg/s", conveyor: drain.run.ours, raw: drain.run.raw, higherIsBetter: true, bar },
    { suite, metric: `consume+ack, subscribe, prefetch ${prefetch}`, unit: "msg/s", conveyor: drain.subscribed.ours, raw: drain.subscribed.raw, higherIsBetter: true, bar },
    { suite, metric: "latency p50, send → handler", unit: "ms", conveyor: ours.p50, raw: raw.p50, higherIsBetter: false },
    { suite, metric: "latency p95", unit: "ms", conveyor: ours.p95, raw: raw.p95, higherIsBetter: false },
    { suite, metric: "latency p99", unit: "ms", conveyor: ours.p99, raw: raw.p99, higherIsBetter: false }
  ] satisfies ReadonlyArray<Row>
})

export const run: Effect.Effect<ReadonlyArray<Row>, unknown> = measure.pipe(
  Effect.provide(RabbitMq.layer({ url: Redacted.make(url), connectionName: "conveyor-bench", prefetch }))
)
