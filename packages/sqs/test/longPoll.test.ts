/**
 * Long polling on core's poll path: a PollingOnly consumer of an idle SQS
 * queue parks in a ReceiveMessage that waits up to its poll period, so a
 * message reaches it in about one long-poll round trip, not a poll period;
 * and stopping a consumer (or a receive) parked there is prompt and loses
 * nothing — what the abandoned poll brings back is made visible again at
 * once, not after the visibility timeout.
 */
import { Consumer, type Message, Messaging } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Schedule } from "effect"
import { emulator, provider, uniqueQueue, withQueues } from "./support.ts"

const setup = Effect.gen(function*() {
  const e = yield* emulator
  const m = yield* provider(e.endpoint)
  const q = uniqueQueue("lp")
  yield* withQueues(m, [q])
  return { e, m, q }
})

// A poll period far longer than any bound below: a message that waited for the schedule fails them.
const polling = { mode: "PollingOnly", poll: Schedule.spaced("10 seconds"), visibilityTimeout: "30 seconds" } as const

/** Long-polls `q` until a message arrives (up to 5 s); the time it took. */
const nextMessage = (m: Messaging.Messaging["Service"], q: Message.QueuedMessage["queue"]) =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const [message] = yield* m.receive(q, { max: 1, visibilityTimeout: "30 seconds", waitTime: "5 seconds" })
    return { message, tookMs: (yield* Clock.currentTimeMillis) - started }
  })

describe("sqs: long polling on the poll path", () => {
  it.live("a PollingOnly consumer (10 s poll) of an idle queue gets each message within a long-poll round trip", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      assert.strictEqual(Duration.toSeconds(m.capabilities.maxWaitTime!), 20)
      const sentAt = new Map<string, number>()
      const latencies: Array<number> = []
      const fiber = yield* Consumer.run([q], (message) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          latencies.push(now - sentAt.get(String(message.payload))!)
        }), polling).pipe(Effect.provideService(Messaging.Messaging, m), Effect.forkChild)
      // The start-up sweep finds nothing and parks.
      yield* Effect.sleep("500 millis")
      for (let i = 0; i < 8; i++) {
        // Idle between messages: each finds the consumer parked again, not at a poll tick.
        yield* Effect.sleep(`${150 + Math.floor(Math.random() * 100)} millis`)
        sentAt.set(String(i), yield* Clock.currentTimeMillis)
        yield* m.send(q, String(i))
        const deadline = (yield* Clock.currentTimeMillis) + 5_000
        while (latencies.length <= i && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("1 millis")
      }
      yield* Fiber.interrupt(fiber)
      console.log(`PollingOnly idle send→handler (ms): ${latencies.join(", ")}`)
      assert.strictEqual(latencies.length, 8, `handled ${latencies.length} of 8 within 5 s each`)
      // Polled on the schedule, each would wait up to 10 s (5 s on average).
      assert.isBelow(Math.max(...latencies), 1000, `latencies ${latencies.join(", ")} ms`)
    }), 60_000)

  it.live("interrupting a PollingOnly consumer parked in a long poll returns at once and loses nothing", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      const handled: Array<unknown> = []
      const fiber = yield* Consumer.run([q], (message) => Effect.sync(() => handled.push(message.payload)), polling).pipe(
        Effect.provideService(Messaging.Messaging, m),
        Effect.forkChild
      )
      yield* Effect.sleep("500 millis")
      const before = yield* Clock.currentTimeMillis
      yield* Fiber.interrupt(fiber)
      const stopMs = (yield* Clock.currentTimeMillis) - before
      assert.isBelow(stopMs, 500, `shutdown took ${stopMs} ms: it must not wait for the long poll`)
      // The abandoned poll is still parked on the server: it claims this message, and gives it back.
      const id = yield* m.send(q, "after the end")
      const { message, tookMs } = yield* nextMessage(m, q)
      assert.deepStrictEqual(handled, [], "the stopped consumer handled nothing")
      assert.strictEqual(message?.id, id, "back long before its 30 s visibility timeout")
      assert.strictEqual(message?.receiveCount, 2, "claimed once by the abandoned poll, then released")
      assert.isBelow(tookMs, 2000)
    }), 30_000)

  it.live("an interrupted receive with a waitTime returns at once; what its poll then claims goes back", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      const waiting = yield* Effect.forkChild(m.receive(q, { max: 10, visibilityTimeout: "30 seconds", waitTime: "10 seconds" }))
      yield* Effect.sleep("300 millis")
      const before = yield* Clock.currentTimeMillis
      yield* Fiber.interrupt(waiting)
      assert.isBelow((yield* Clock.currentTimeMillis) - before, 500)
      const id = yield* m.send(q, "after the interruption")
      const { message, tookMs } = yield* nextMessage(m, q)
      assert.strictEqual(message?.id, id)
      assert.strictEqual(message?.receiveCount, 2, "claimed by the interrupted receive's poll, then released")
      assert.isBelow(tookMs, 2000)
    }), 30_000)
})
