/**
 * The in-memory suite: the cost of Conveyor itself, with no broker in the way.
 * - push latency: one message at a time, `send` → handler start through
 *   `Consumer.run`, so each message is delivered by the subscription (push);
 * - throughput: a producer sending batches while `Consumer.run`
 *   (concurrency 16, batch 64) drains, timed from the first send until every
 *   message has been handled and acked. DESIGN §9 bar: ≥ 100k msg/s.
 * Each measurement runs after a warm-up, on a fresh provider.
 */
import { Consumer, InMemory, Messaging, QueueName } from "@conveyor/core"
import { Deferred, Effect, Queue } from "effect"
import type { Row } from "./Report.ts"
import { percentile } from "./Stats.ts"

const suite = "memory"
const queue = QueueName.makeUnsafe("bench_memory")

const latencySamples = 2_000
const latencyWarmup = 200
const throughputMessages = 200_000
const throughputWarmup = 20_000
const sendBatchSize = 1_000
const concurrency = 16
const batchSize = 64

/** Milliseconds from `send` to the handler starting, for `count` messages sent one at a time. */
const pushLatencies = (count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const messaging = yield* Messaging.Messaging
    yield* messaging.ensureQueue(queue)
    const arrivals = yield* Queue.unbounded<number>()
    yield* Consumer.run([queue], () => Queue.offer(arrivals, performance.now())).pipe(Effect.forkScoped)
    const samples: Array<number> = []
    for (let i = 0; i < count; i++) {
      const sentAt = performance.now()
      yield* messaging.send(queue, { i })
      samples.push((yield* Queue.take(arrivals)) - sentAt)
    }
    return samples.sort((a, b) => a - b)
  })).pipe(Effect.provide(InMemory.layer()))

/** Messages per second, first send to last ack, for `count` messages. */
const throughput = (count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const messaging = yield* Messaging.Messaging
    yield* messaging.ensureQueue(queue)
    const allHandled = yield* Deferred.make<void>()
    let handled = 0
    const payloads = Array.from({ length: sendBatchSize }, (_, i) => ({ i }))
    const startedAt = performance.now()
    yield* Consumer.run(
      [queue],
      () => Effect.suspend(() => ++handled === count ? Deferred.succeed(allHandled, undefined) : Effect.void),
      { concurrency, batchSize }
    ).pipe(Effect.forkScoped)
    for (let sent = 0; sent < count; sent += sendBatchSize) {
      yield* messaging.sendBatch(queue, payloads.slice(0, Math.min(sendBatchSize, count - sent)))
    }
    yield* Deferred.await(allHandled)
    // The last handlers' acks follow their completion: wait until the queue is empty.
    while ((yield* messaging.stats(queue)).depth > 0) yield* Effect.yieldNow
    return count / ((performance.now() - startedAt) / 1000)
  })).pipe(Effect.provide(InMemory.layer()))

export const run: Effect.Effect<ReadonlyArray<Row>, unknown> = Effect.gen(function*() {
  yield* pushLatencies(latencyWarmup)
  const latencies = yield* pushLatencies(latencySamples)
  yield* throughput(throughputWarmup)
  const messagesPerSecond = yield* throughput(throughputMessages)
  const latencyRow = (p: number): Row => ({
    suite,
    metric: `push latency send→handler p${p} (${latencySamples} msgs, one at a time)`,
    unit: "ms",
    conveyor: percentile(latencies, p),
    higherIsBetter: false
  })
  return [
    latencyRow(50),
    latencyRow(99),
    {
      suite,
      metric: `send→ack throughput via Consumer.run (${throughputMessages / 1000}k msgs, concurrency ${concurrency}, batch ${batchSize})`,
      unit: "msg/s",
      conveyor: messagesPerSecond,
      higherIsBetter: true,
      bar: "≥ 100k msg/s"
    }
  ]
})
