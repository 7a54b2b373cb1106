/**
 * Faults, counted: what the consumer processed against what was sent.
 * - The emulator stopped and restarted: its in-memory queues and messages go
 *   with it (that loss is the emulator's, not ours); the consumer rides out
 *   the outage, reports it on `pushHealth`, and handles everything sent to
 *   the restarted server.
 * - The recovery shows as soon as any call reaches the server again (here a
 *   send), and a subscription waiting out its reconnect delay polls at once.
 * - The endpoint unreachable while the server keeps its state (a TCP proxy
 *   taken down and brought back): nothing is lost at all.
 */
import { Consumer, Messaging, type MessageNotification } from "@conveyor/core"
import { TcpProxy } from "@conveyor/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule, Stream } from "effect"
import { emulator, provider, uniqueQueue, withQueues } from "./support.ts"

const eventually = (what: string, check: () => boolean, withinMs: number) =>
  Effect.gen(function*() {
    for (let waited = 0; !check(); waited += 25) {
      if (waited >= withinMs) return yield* Effect.fail(new Error(`Not within ${withinMs} ms: ${what}`))
      yield* Effect.sleep("25 millis")
    }
  })

describe("sqs: faults", () => {
  it.live("emulator stopped and restarted mid-flow: the consumer resumes and handles all the new server has", () =>
    Effect.gen(function*() {
      const e = yield* emulator
      const m = yield* provider(e.endpoint)
      const q = uniqueQueue("restart")
      yield* withQueues(m, [q])
      const states: Array<MessageNotification.PushHealth["_tag"]> = []
      yield* m.pushHealth.pipe(Stream.runForEach((state) => Effect.sync(() => states.push(state._tag))), Effect.forkChild)
      const handled = new Set<string>()
      const consumer = yield* Consumer.run([q], (message) =>
        Effect.andThen(Effect.sleep("5 millis"), Effect.sync(() => handled.add(String(message.payload)))), {
        concurrency: 4,
        visibilityTimeout: "5 seconds"
      }).pipe(Effect.provideService(Messaging.Messaging, m), Effect.forkChild)

      const before = Array.from({ length: 200 }, (_, n) => `before-${n}`)
      yield* m.sendBatch(q, before)
      yield* eventually("the consumer makes progress", () => handled.size >= 20, 10_000)
      yield* e.stop
      const handledBeforeStop = handled.size
      yield* eventually("the outage shows on pushHealth", () => states.includes("Degraded"), 10_000)
      yield* Effect.sleep("500 millis")
      yield* e.restart([q])
      const after = Array.from({ length: 100 }, (_, n) => `after-${n}`)
      yield* m.sendBatch(q, after)
      yield* eventually("every message sent to the restarted server is handled", () => after.every((p) => handled.has(p)), 20_000).pipe(
      )
      yield* eventually("pushHealth reports the recovery", () => states.includes("Reconnected"), 10_000)
      yield* Fiber.interrupt(consumer)
      const sent = new Set([...before, ...after])
      for (const payload of handled) assert.isTrue(sent.has(payload), `handled only what was sent (${payload})`)
      assert.isBelow(handledBeforeStop, before.length, "the stop came mid-flow")
      assert.includeMembers(states, ["Connected", "Degraded", "Reconnected"])
      assert.strictEqual((yield* m.stats(q)).depth, 0)
      console.log(`restart: sent ${sent.size}, handled ${handled.size} (${before.filter((p) => handled.has(p)).length} of ${before.length} sent before the stop; the rest went down with the emulator's memory)`)
    }), 60_000)

  // A reconnect delay far longer than the test: only the proof that the endpoint is back may end it.
  it.live("a send that reaches the restarted server reports Reconnected, and a subscription waiting out its reconnect delay polls again at once", () =>
    Effect.gen(function*() {
      const e = yield* emulator
      const m = yield* provider(e.endpoint, { reconnect: Schedule.spaced("60 seconds") })
      const q = uniqueQueue("reached")
      yield* withQueues(m, [q])
      const states: Array<MessageNotification.PushHealth["_tag"]> = []
      yield* m.pushHealth.pipe(Stream.runForEach((state) => Effect.sync(() => states.push(state._tag))), Effect.forkChild)
      const received: Array<string> = []
      yield* m.subscribe([q], { visibilityTimeout: "5 seconds" }).pipe(
        Stream.runForEach((n) =>
          n._tag === "Message"
            ? Effect.andThen(Effect.sync(() => received.push(String(n.message.payload))), m.ack(n.message.receipt))
            : Effect.void
        ),
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis")
      yield* e.stop
      yield* eventually("the cut long poll shows on pushHealth", () => states.includes("Degraded"), 10_000)
      yield* e.restart([q])
      yield* m.send(q, "after")
      // Without the send's proof: not before the subscription's next poll, 60 s away.
      yield* eventually("pushHealth reports the recovery", () => states.includes("Reconnected"), 10_000)
      yield* eventually("the subscription polls again and gets the message", () => received.includes("after"), 10_000)
      assert.deepStrictEqual(states, ["Connected", "Degraded", "Reconnected"])
    }), 30_000)

  it.live("endpoint unreachable while the server keeps its state: nothing is lost", () =>
    Effect.gen(function*() {
      const e = yield* emulator
      const proxy = yield* TcpProxy.make(e.endpoint)
      const direct = yield* provider(e.endpoint)
      const m = yield* provider(proxy.url.replace(/\/$/, ""))
      const q = uniqueQueue("outage")
      yield* withQueues(direct, [q])
      const handled = new Map<string, number>()
      const consumer = yield* Consumer.run([q], (message) =>
        Effect.andThen(Effect.sleep("5 millis"), Effect.sync(() => {
          const key = String(message.payload)
          handled.set(key, (handled.get(key) ?? 0) + 1)
        })), { concurrency: 4, visibilityTimeout: "2 seconds" }).pipe(Effect.provideService(Messaging.Messaging, m), Effect.forkChild)
      const payloads = Array.from({ length: 300 }, (_, n) => `m-${n}`)
      yield* direct.sendBatch(q, payloads.slice(0, 200))
      yield* eventually("the consumer makes progress", () => handled.size >= 20, 10_000)
      yield* proxy.down
      // Sent while the consumer cannot reach the server: kept by the server, handled after.
      yield* direct.sendBatch(q, payloads.slice(200))
      yield* Effect.sleep("1 second")
      yield* proxy.up
      yield* eventually("every message is handled", () => handled.size === payloads.length, 30_000)
      yield* Fiber.interrupt(consumer)
      const duplicates = [...handled.values()].filter((n) => n > 1).length
      console.log(`outage: sent ${payloads.length}, handled ${handled.size} distinct, ${duplicates} more than once`)
      assert.strictEqual((yield* direct.stats(q)).depth, 0)
    }), 60_000)

  it.live("healthCheck reports a stopped endpoint in its value, never by failing", () =>
    Effect.gen(function*() {
      const e = yield* emulator
      const m = yield* provider(e.endpoint)
      const up = yield* m.healthCheck
      assert.isTrue(up.healthy)
      assert.strictEqual(up.provider, "sqs")
      yield* e.stop
      const down = yield* m.healthCheck
      assert.isFalse(down.healthy)
      assert.include(down.detail, "could not be reached")
    }), 30_000)
})
