/**
 * Delayed messages wake a Hybrid consumer on time (issue 8.1): each is
 * announced with a ready time never earlier than its `vt`, so the fetch at
 * that instant finds it visible. The fallback poll is set far away, so a
 * missed wake-up shows as a message 30 seconds late.
 */
import { Consumer, Messaging, Observability } from "@conveyor/core"
import { assert, layer } from "@effect/vitest"
import { Clock, Effect, Fiber, Metric, Queue, Stream } from "effect"
import { testLayer, uniqueQueue } from "./support.ts"

const count = 200
const delayMs = 1000

layer(testLayer({ fallbackPollingInterval: "30 seconds" }), { excludeTestServices: true, timeout: "30 seconds" })("pgmq delayed delivery", (it) => {
  it.effect(`${count} delayed messages each wake a Hybrid consumer when due, none left to the fallback poll, each counted path=push`, () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = uniqueQueue("dl")
      yield* m.ensureQueue(q)
      yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(q)))
      const counted = Effect.all([
        Effect.map(Metric.value(Observability.receivedOn("push")), (state) => state.count),
        Effect.map(Metric.value(Observability.receivedOn("poll")), (state) => state.count)
      ])
      const [pushedBefore, polledBefore] = yield* counted
      const arrivals = yield* Queue.unbounded<{ readonly due: number; readonly at: number }>()
      const consumer = yield* Consumer.stream([q], { mode: "Hybrid" }).pipe(
        Stream.runForEach((message) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.andThen(
              // Due on the server's clock (same host): the send's own latency is not lateness.
              Queue.offer(arrivals, { due: message.enqueuedAt.getTime() + delayMs, at }),
              m.ack(message.receipt)
            ))),
        Effect.forkChild
      )
      yield* Effect.sleep("300 millis")
      for (let i = 0; i < count; i++) {
        yield* m.send(q, { i }, { delay: `${delayMs} millis` })
        yield* Effect.sleep("10 millis")
      }
      const got = yield* Effect.forEach(Array.from({ length: count }), () => Queue.take(arrivals).pipe(Effect.timeout("10 seconds")))
      yield* Fiber.interrupt(consumer)
      const lateness = got.map((a) => a.at - a.due).sort((a, b) => a - b)
      const p99 = lateness[Math.ceil(count * 0.99) - 1]!
      console.log(`delayed wake-ups: ${count} sent, ${got.length} received; lateness p50 ${lateness[count / 2]} ms, p99 ${p99} ms, max ${lateness[count - 1]} ms, early ${lateness.filter((l) => l < -5).length}`)
      assert.strictEqual(got.length, count)
      const [pushed, polled] = yield* counted
      assert.deepStrictEqual([pushed - pushedBefore, polled - polledBefore], [count, 0], "announced, then claimed by id: path=push (issue 8.6)")
      // A missed wake-up waits for the 30 s fallback poll; on time is milliseconds (p99 ≤ 20 ms on
      // an idle machine). The bound leaves room for a loaded one, never for a missed wake-up.
      assert.isBelow(lateness[count - 1]!, 500)
    }), 30_000)
})
