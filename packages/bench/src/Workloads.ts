/**
 * The three workloads, written once against `Pipe` and run the same way for
 * every subject of every provider (issue 7, "Measured"):
 * - W1: one idle consumer (concurrency 1); `samples` messages sent one at a
 *   time, the next once the previous is settled; each sample is send →
 *   handler start.
 * - W2: `messages` preloaded (batches of 500), then drained by `concurrency`
 *   handlers; msg/s from the first handler start to the last settle (so a
 *   subject's start-up is not counted).
 * - W3: `chains` chains of `hops` messages, `concurrency` handlers, each
 *   handler sending its chain's next message (the workflow pattern); the
 *   first hop of every chain is sent in one batch. msgs/s from that batch to
 *   the last settle; hop latency = a hop's send → its handler start.
 * Each runs after a warm-up of the same kind (W1: `latencyWarmup` samples on
 * the same queue; W2: 1,000 messages, W3: the whole run once, each on a
 * queue of its own): the JIT, pools and listeners are warm, as in a service
 * that has been running. W3's warm-up is its full length because its
 * measured run is short (3,000 messages, ~0.1 s on Redis): after a warm-up of
 * 5 hops, V8 still compiled ~220 functions of Conveyor's path and ~110 of the
 * raw loop's during it (`--trace-opt`), on the cores the server needs too;
 * after one of 30 hops, ~140 and ~50 (DESIGN §9).
 */
import { Deferred, Effect, Exit, Queue } from "effect"
import type { Connection, Hop, Subject } from "./Pipe.ts"
import { summary } from "./Stats.ts"

export const workloadNames = ["w1", "w2", "w3"] as const
export type WorkloadName = typeof workloadNames[number]

export interface Counts {
  readonly latencySamples: number
  readonly latencyWarmup: number
  readonly drainMessages: number
  readonly drainConcurrency: ReadonlyArray<number>
  readonly chains: number
  readonly hops: number
  readonly chainConcurrency: number
  /** A run still going after this long is stopped and reported as failed. */
  readonly limitSeconds: number
}

export const fullCounts: Counts = {
  latencySamples: 500,
  latencyWarmup: 100,
  drainMessages: 20_000,
  drainConcurrency: [16, 64],
  chains: 100,
  hops: 30,
  chainConcurrency: 16,
  limitSeconds: 120
}

/** `--quick`: a few seconds per run, to see that everything works; its ratios mean little. */
export const quickCounts: Counts = {
  latencySamples: 60,
  latencyWarmup: 20,
  drainMessages: 2_000,
  drainConcurrency: [16, 64],
  chains: 20,
  hops: 10,
  chainConcurrency: 16,
  limitSeconds: 60
}

/** One measured run of one workload by one subject (in a process of its own). */
export type Measurement =
  | { readonly workload: "w1"; readonly samples: number; readonly p50: number; readonly p99: number }
  | { readonly workload: "w2"; readonly concurrency: number; readonly messages: number; readonly msgPerSec: number }
  | {
    readonly workload: "w3"
    readonly messages: number
    readonly msgPerSec: number
    readonly hopP50: number
    readonly hopP99: number
    readonly firstHopP50: number
  }

const now = () => performance.now()

const hop = (chain: number, index: number): Hop => ({ chain, hop: index, sentAt: now() })

const withinLimit = <A>(counts: Counts, what: string, wait: Effect.Effect<A>) =>
  wait.pipe(
    Effect.timeoutOrElse({
      duration: `${counts.limitSeconds} seconds`,
      orElse: () => Effect.fail(new Error(`${what} did not finish within ${counts.limitSeconds} s`))
    })
  )

/** W1's samples (ms, send → handler start), after `warmup` unrecorded ones on the same queue. */
const latencies = (subject: Connection, samples: number, warmup: number, counts: Counts) =>
  Effect.scoped(Effect.gen(function*() {
    const pipe = yield* subject.open("w1")
    const started = yield* Queue.unbounded<number>()
    const settled = yield* Queue.unbounded<void>()
    yield* pipe.consume(1, (message) => {
      Queue.offerUnsafe(started, now() - message.sentAt)
      return undefined
    }, () => Queue.offerUnsafe(settled, undefined))
    yield* Effect.sleep("300 millis") // listeners are listening
    const recorded: Array<number> = []
    for (let i = 0; i < warmup + samples; i++) {
      yield* pipe.send(hop(0, i))
      const ms = yield* withinLimit(counts, `W1 sample ${i}`, Queue.take(started))
      yield* withinLimit(counts, `W1 settle ${i}`, Queue.take(settled))
      if (i >= warmup) recorded.push(ms)
    }
    return recorded
  }))

const preloadChunk = 500

/** W2's rate: `messages` preloaded, drained by `concurrency` handlers. */
const drainRate = (subject: Connection, messages: number, concurrency: number, counts: Counts) =>
  Effect.scoped(Effect.gen(function*() {
    const pipe = yield* subject.open("w2")
    for (let sent = 0; sent < messages; sent += preloadChunk) {
      const size = Math.min(preloadChunk, messages - sent)
      yield* pipe.sendBatch(Array.from({ length: size }, (_, i) => hop(sent + i, 0)))
    }
    const done = yield* Deferred.make<number>()
    let firstStart: number | undefined
    let settled = 0
    yield* pipe.consume(concurrency, () => {
      firstStart ??= now()
      return undefined
    }, () => {
      if (++settled === messages) Deferred.doneUnsafe(done, Exit.succeed(now()))
    })
    const end = yield* withinLimit(counts, `W2 (${settled} of ${messages} settled)`, Deferred.await(done))
    return messages / ((end - firstStart!) / 1000)
  }))

/** W3's numbers: `chains` chains of `hops`, each handler sending its chain's next hop. */
const chainRun = (subject: Connection, chains: number, hops: number, concurrency: number, counts: Counts) =>
  Effect.scoped(Effect.gen(function*() {
    const pipe = yield* subject.open("w3")
    const total = chains * hops
    const hopLatencies: Array<number> = []
    const firstHops: Array<number> = []
    const done = yield* Deferred.make<number>()
    let settled = 0
    yield* pipe.consume(concurrency, (message) => {
      const ms = now() - message.sentAt
      hopLatencies.push(ms)
      if (message.hop === 0) firstHops.push(ms)
      return message.hop + 1 < hops ? hop(message.chain, message.hop + 1) : undefined
    }, () => {
      if (++settled === total) Deferred.doneUnsafe(done, Exit.succeed(now()))
    })
    yield* Effect.sleep("300 millis") // listeners are listening
    const startedAt = now()
    yield* pipe.sendBatch(Array.from({ length: chains }, (_, chain) => hop(chain, 0)))
    const end = yield* withinLimit(counts, `W3 (${settled} of ${total} settled)`, Deferred.await(done))
    const all = summary(hopLatencies)
    return {
      workload: "w3",
      messages: total,
      msgPerSec: total / ((end - startedAt) / 1000),
      hopP50: all.p50,
      hopP99: all.p99,
      firstHopP50: summary(firstHops).p50
    } satisfies Measurement
  }))

/** One measurement: a warm-up of the same kind, then the measured run. */
export const measure = (
  subject: Subject,
  workload: WorkloadName,
  counts: Counts,
  concurrency: number
): Effect.Effect<Measurement, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* subject.connect
    switch (workload) {
      case "w1": {
        const scale = subject.latencySampleScale ?? 1
        const samples = Math.max(5, Math.round(counts.latencySamples * scale))
        const warmup = Math.max(2, Math.round(counts.latencyWarmup * scale))
        const { p50, p99 } = summary(yield* latencies(connection, samples, warmup, counts))
        return { workload, samples, p50, p99 }
      }
      case "w2": {
        yield* drainRate(connection, Math.min(1_000, counts.drainMessages), concurrency, counts)
        const msgPerSec = yield* drainRate(connection, counts.drainMessages, concurrency, counts)
        return { workload, concurrency, messages: counts.drainMessages, msgPerSec }
      }
      case "w3": {
        yield* chainRun(connection, counts.chains, counts.hops, counts.chainConcurrency, counts)
        return yield* chainRun(connection, counts.chains, counts.hops, counts.chainConcurrency, counts)
      }
    }
  }))
