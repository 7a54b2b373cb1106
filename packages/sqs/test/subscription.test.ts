/**
 * The long-poll subscription: an idle consumer gets a message in about one
 * long-poll round trip (not a poll period), and an interrupted subscription
 * gives back everything it claimed and its reader did not pull — including
 * what a poll still in flight brings back after the interruption.
 */
import { Consumer, type Message, Messaging, MessageNotification } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Schedule, Stream } from "effect"
import { emulator, provider, uniqueQueue, withQueues } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

const setup = Effect.gen(function*() {
  const e = yield* emulator
  const m = yield* provider(e.endpoint)
  const q = uniqueQueue("sub")
  yield* withQueues(m, [q])
  return { e, m, q }
})

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** Send → handler times of `rounds` messages sent one by one to an idle consumer in `mode`. */
const idleLatencies = (m: Messaging.Messaging["Service"], q: Message.QueuedMessage["queue"], rounds: number) =>
  Effect.gen(function*() {
    const sentAt = new Map<string, number>()
    const latencies: Array<number> = []
    const fiber = yield* Consumer.run([q], (message) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        latencies.push(now - sentAt.get(String(message.payload))!)
      }), { mode: "Hybrid", poll: Schedule.spaced("1 second"), visibilityTimeout: "30 seconds" }).pipe(Effect.provideService(Messaging.Messaging, m), Effect.forkChild)
    yield* Effect.sleep("300 millis")
    for (let i = 0; i < rounds; i++) {
      // Idle long enough that the consumer sits in a long poll.
      yield* Effect.sleep(`${150 + Math.floor(Math.random() * 100)} millis`)
      sentAt.set(String(i), yield* Clock.currentTimeMillis)
      yield* m.send(q, String(i))
      while (latencies.length <= i) yield* Effect.sleep("1 millis")
    }
    yield* Fiber.interrupt(fiber)
    return latencies
  })

describe("sqs: long-poll subscription", () => {
  it.live("an idle consumer gets a message in about a long-poll round trip, not a poll period", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      assert.strictEqual(m.capabilities.push, "message")
      assert.isFalse(m.capabilities.requiresFallbackPolling)
      const latencies = yield* idleLatencies(m, q, 15)
      console.log(`idle send→handler p50 ${median(latencies)} ms (${latencies.join(", ")})`)
      // Were delivery driven by the 1 s poll, half the messages would wait 500 ms or more; a long
      // poll answers within a round trip (a few ms here, tens on a loaded machine).
      assert.isBelow(median(latencies), 100, `latencies ${latencies.join(", ")} ms`)
    }), 60_000)

  it.live("a poll still in flight when the subscription is interrupted gives back what it claims", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "30 seconds" }).pipe(Stream.runDrain, Effect.forkChild)
      yield* Effect.sleep("300 millis")
      yield* Fiber.interrupt(fiber)
      // The interrupted subscription's long poll is still waiting on the server: it claims these.
      const ids = yield* m.sendBatch(q, ["a", "b", "c"])
      let received: ReadonlyArray<Message.QueuedMessage> = []
      for (let i = 0; i < 40 && received.length < 3; i++) {
        yield* Effect.sleep("25 millis")
        received = [...received, ...(yield* m.receive(q, long))]
      }
      assert.sameMembers(received.map((message) => message.id), [...ids], "all back within a second, not after 30 s")
    }), 30_000)

  it.live("what a subscription's reader pulled is the reader's after the end; what it held unpulled goes back at once", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      yield* m.sendBatch(q, Array.from({ length: 10 }, (_, n) => n))
      // The first chunk the reader pulls, whole: a `take(1)` of elements would drop the rest
      // of that chunk, which the subscription cannot tell from messages being handled.
      const [pulled] = yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch: 5 }).pipe(
        Stream.filter(MessageNotification.$is("Message")),
        Stream.chunks,
        Stream.take(1),
        Stream.runCollect
      )
      assert.isDefined(pulled)
      // Still held after the end: every receipt settles.
      for (const delivery of pulled!) yield* m.ack(delivery.message.receipt)
      const rest = 10 - pulled!.length
      let back = 0
      for (let i = 0; i < 40 && back < rest; i++) {
        back += (yield* m.receive(q, long)).length
        if (back < rest) yield* Effect.sleep("25 millis")
      }
      assert.strictEqual(back, rest, `the ${rest} never pulled are visible again at once`)
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.inFlight, rest, "the pulled ones are acked and gone")
      assert.strictEqual(stats.depth, rest)
    }), 30_000)

  it.live("an explicit PollingOnly consumer drains a backlog through its own receives (no subscription)", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup
      const handled = new Set<unknown>()
      const fiber = yield* Consumer.run([q], (message) => Effect.sync(() => handled.add(message.payload)), {
        mode: "PollingOnly",
        batchSize: 16,
        concurrency: 4,
        visibilityTimeout: "30 seconds"
      }).pipe(Effect.provideService(Messaging.Messaging, m), Effect.forkChild)
      yield* m.sendBatch(q, Array.from({ length: 40 }, (_, n) => n))
      for (let i = 0; i < 200 && handled.size < 40; i++) yield* Effect.sleep("25 millis")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(handled.size, 40)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }), 30_000)
})
