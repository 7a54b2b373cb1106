/**
 * The PGMQ suite, Conveyor next to a hand-written loop on the `pg` driver,
 * both against the same local PostgreSQL in the same run:
 * - push latency: one message at a time, `send` → handler start; the next
 *   message is sent once the previous one is settled. Conveyor:
 *   `Consumer.run` (Hybrid), the message arriving inline by NOTIFY and claimed
 *   by id, acked after. Raw: LISTEN on the queue's channel, `pgmq.read` on
 *   each notification (handler start), `pgmq.archive` after. The two sides
 *   alternate message by message in one loop (see `pushLatency`).
 * - drain throughput: a queue preloaded with messages drained by 1, 16 and
 *   64 consumers. Conveyor: that many `Consumer.run` fibers (PollingOnly,
 *   batch 16, one ack per message). Raw: that many loops of
 *   `pgmq.read(batch 16)` + one `pgmq.archive` per message. Both sides use a
 *   pool of 10 connections.
 * Queues are unique per run and dropped afterwards.
 */
import { Consumer, Messaging, QueueName } from "@conveyor/core"
import { Pgmq, PgmqNotifyConfig } from "@conveyor/pgmq"
import { Deferred, Effect, Fiber, Layer, Queue, Redacted } from "effect"
import pg from "pg"
import type { Row } from "./Report.ts"
import { progress as progressOf, summary, tag } from "./Stats.ts"

const suite = "pgmq"
const progress = progressOf(suite)
const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const poolSize = 10
const latencySamples = 1_000
// V8 is still optimizing Conveyor's path (Effect runtime, streams, the pg
// protocol) over its first few hundred messages, at twice the CPU per message
// of later ones: a warm-up of a few dozen measured that, not steady state.
const latencyWarmup = 200
const drainMessages = 4_000
const drainBatch = 16
const consumerCounts = [1, 16, 64] as const

const notifyDefaults = { notifyMaxBytes: PgmqNotifyConfig.defaultNotifyMaxBytes }

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** A queue for one measurement, created through the provider and dropped afterwards. */
const withQueue = <A, E, R>(name: string, use: (queue: QueueName.QueueName) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.flatMap(Messaging.Messaging, (m) => {
      const queue = QueueName.makeUnsafe(`bench_${tag()}_${name}`)
      return Effect.as(m.ensureQueue(queue), queue)
    }),
    use,
    (queue) => Effect.ignore(Effect.flatMap(Messaging.Messaging, (m) => m.deleteQueue(queue)))
  )

/** Milliseconds from `send` to handler start for message `i`, resolved once that message is settled. */
type Sampler = (i: number) => Effect.Effect<number>

/**
 * Conveyor's side: `Consumer.run` (Hybrid) on `queue`. A sample ends when the
 * message is acked, as the raw side's ends when it is archived, so that every
 * sample starts with nothing of the previous one still running.
 */
const conveyorSampler = (queue: QueueName.QueueName) =>
  Effect.gen(function*() {
    const messaging = yield* Messaging.Messaging
    const arrivals = yield* Queue.unbounded<number>()
    const acks = yield* Queue.unbounded<void>()
    const observed: Messaging.Messaging["Service"] = {
      ...messaging,
      ack: (receipt) => Effect.tap(messaging.ack(receipt), () => Queue.offer(acks, undefined))
    }
    yield* Consumer.run([queue], () => Queue.offer(arrivals, performance.now())).pipe(
      Effect.provideService(Messaging.Messaging, observed),
      Effect.forkScoped
    )
    const sample: Sampler = (i) =>
      Effect.gen(function*() {
        const sentAt = performance.now()
        yield* messaging.send(queue, { i })
        const arrived = yield* Queue.take(arrivals)
        yield* Queue.take(acks)
        return arrived - sentAt
      }).pipe(Effect.orDie)
    return sample
  })

/** The hand-written push loop on `queue`: LISTEN, `pgmq.read` on each notification (handler start), archive. */
const rawSampler = (queue: QueueName.QueueName, channel: string) =>
  Effect.gen(function*() {
    const { listener, sender, worker } = yield* Effect.acquireRelease(
      promise(async () => {
        const listener = new pg.Client({ connectionString: url })
        const worker = new pg.Client({ connectionString: url })
        const sender = new pg.Client({ connectionString: url })
        await Promise.all([listener.connect(), worker.connect(), sender.connect()])
        return { listener, worker, sender }
      }),
      ({ listener, sender, worker }) => promise(() => Promise.all([listener.end(), worker.end(), sender.end()]))
    )
    let settled: ((handlerStartedAt: number) => void) | undefined
    let busy = Promise.resolve()
    const queueOf = (payload: string | undefined): unknown => {
      try {
        return JSON.parse(payload ?? "{}").queue_name
      } catch {
        return undefined // the channel is shared: other clients' notifications need not be ours, nor JSON
      }
    }
    listener.on("notification", (notification) => {
      if (queueOf(notification.payload) !== queue) return
      busy = busy.then(async () => {
        const { rows } = await worker.query<{ msg_id: string }>("SELECT msg_id FROM pgmq.read($1::text, 30, 1)", [queue])
        const handlerStartedAt = performance.now()
        for (const row of rows) {
          await worker.query("SELECT pgmq.archive($1::text, $2::bigint)", [queue, row.msg_id])
          settled?.(handlerStartedAt)
        }
      })
    })
    yield* promise(() => listener.query(`LISTEN "${channel}"`))
    const sample: Sampler = (i) =>
      promise(async () => {
        const handled = new Promise<number>((resolve) => (settled = resolve))
        const sentAt = performance.now()
        await sender.query("SELECT pgmq.send($1::text, $2::jsonb)", [queue, JSON.stringify({ i })])
        return (await handled) - sentAt
      })
    return sample
  })

/**
 * Both sides in one loop, one message at a time, alternating message by
 * message (and which side goes first) after a shared warm-up: load from
 * other processes on the machine, JIT warm-up and pool growth fall on both
 * sides alike instead of on whichever block ran at the worse moment.
 */
// `<x>_queue` names put each queue in a namespace of its own, so each side's
// listener hears only its own queue's notifications, not the other side's nor
// those of other clients of the database on the shared `default` channel.
const pushLatency = withQueue("lat_queue", (ours) =>
  withQueue("lat_queue", (theirs) =>
    Effect.scoped(Effect.gen(function*() {
      const sides = [
        yield* conveyorSampler(ours),
        yield* rawSampler(theirs, PgmqNotifyConfig.messageChannel(notifyDefaults, theirs))
      ] as const
      yield* Effect.sleep("300 millis") // the subscription is listening
      const samples: [Array<number>, Array<number>] = [[], []]
      for (let i = 0; i < latencyWarmup + latencySamples; i++) {
        for (const side of i % 2 === 0 ? [0, 1] as const : [1, 0] as const) {
          const ms = yield* sides[side](i)
          if (i >= latencyWarmup) samples[side].push(ms)
        }
      }
      return { conveyor: summary(samples[0]), raw: summary(samples[1]) }
    }))
  )
)

const preload = (queue: QueueName.QueueName) =>
  Effect.flatMap(Messaging.Messaging, (m) =>
    Effect.forEach(
      Array.from({ length: drainMessages / 500 }, (_, chunk) => chunk),
      (chunk) => m.sendBatch(queue, Array.from({ length: 500 }, (_, i) => ({ n: chunk * 500 + i }))),
      { discard: true }
    ))

/** Messages per second for `consumers` Consumer.run fibers draining a preloaded queue. */
const conveyorDrain = (queue: QueueName.QueueName, consumers: number) =>
  Effect.scoped(Effect.gen(function*() {
    yield* preload(queue)
    let handled = 0
    const done = yield* Deferred.make<void>()
    const handler = () =>
      Effect.suspend(() => ++handled === drainMessages ? Deferred.succeed(done, undefined) : Effect.void)
    const startedAt = performance.now()
    const fibers = yield* Effect.forEach(
      Array.from({ length: consumers }),
      () =>
        Consumer.run([queue], handler, { mode: "PollingOnly", batchSize: drainBatch, concurrency: 1 }).pipe(
          Effect.forkScoped
        )
    )
    yield* Deferred.await(done)
    const seconds = (performance.now() - startedAt) / 1000
    yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
    return drainMessages / seconds
  }))

/** The hand-written drain: `consumers` loops of read + archive per message. */
const rawDrain = (queue: QueueName.QueueName, consumers: number) =>
  Effect.gen(function*() {
    yield* preload(queue)
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => new pg.Pool({ connectionString: url, max: poolSize })),
      (pool) =>
        promise(async () => {
          let handled = 0
          const startedAt = performance.now()
          const loop = async () => {
            while (handled < drainMessages) {
              const { rows } = await pool.query<{ msg_id: string }>(
                "SELECT msg_id, message FROM pgmq.read($1::text, 30, $2::integer)",
                [queue, drainBatch]
              )
              if (rows.length === 0) {
                await new Promise((resolve) => setTimeout(resolve, 5))
                continue
              }
              for (const row of rows) {
                await pool.query("SELECT pgmq.archive($1::text, $2::bigint)", [queue, row.msg_id])
                handled++
              }
            }
          }
          await Promise.all(Array.from({ length: consumers }, loop))
          return drainMessages / ((performance.now() - startedAt) / 1000)
        }),
      (pool) => promise(() => pool.end())
    )
  })

const measure = Effect.gen(function*() {
  const rows: Array<Row> = []
  yield* progress("push latency (conveyor and raw LISTEN + read, interleaved)")
  const { conveyor: ours, raw } = yield* pushLatency
  rows.push(
    { suite, metric: "push latency p50, send → handler", unit: "ms", conveyor: ours.p50, raw: raw.p50, higherIsBetter: false, bar: "≤ 2× raw" },
    { suite, metric: "push latency p95", unit: "ms", conveyor: ours.p95, raw: raw.p95, higherIsBetter: false },
    { suite, metric: "push latency p99", unit: "ms", conveyor: ours.p99, raw: raw.p99, higherIsBetter: false, bar: "≤ 10 ms" }
  )
  for (const consumers of consumerCounts) {
    yield* progress(`drain, ${consumers} consumer(s) (conveyor)`)
    const conveyor = yield* withQueue("drain", (queue) => conveyorDrain(queue, consumers))
    yield* progress(`drain, ${consumers} consumer(s) (raw read + archive)`)
    const rawRate = yield* withQueue("drain", (queue) => rawDrain(queue, consumers))
    rows.push({
      suite,
      metric: `drain throughput, ${consumers} consumer${consumers === 1 ? "" : "s"}`,
      unit: "msg/s",
      conveyor,
      raw: rawRate,
      higherIsBetter: true,
      ...(consumers === 16 ? { bar: "≥ 0.9× raw" } : consumers === 64 ? { bar: "no drop-off vs 16" } : {})
    })
  }
  return rows as ReadonlyArray<Row>
})

export const run: Effect.Effect<ReadonlyArray<Row>, unknown> = measure.pipe(
  Effect.provide(
    Pgmq.layer({ url: Redacted.make(url), maxConnections: poolSize, applicationName: "conveyor-bench" }).pipe(
      Layer.fresh
    )
  )
)
