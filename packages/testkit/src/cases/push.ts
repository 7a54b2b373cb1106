import { Consumer, type Message, MessageNotification, Messaging, type QueueName } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import type { Context } from "../Conformance.ts"
import { freshQueue } from "../Harness.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

/** How soon a subscription to a queue deleted through the same layer ends (DESIGN §3, `subscribe`). */
const endsWithin = Duration.seconds(1)

/** The subscription of the other tests: the provider's own, or where it has no push a Consumer.stream. */
const notificationsOf = (
  m: Messaging.Messaging["Service"],
  queues: ReadonlyArray<QueueName.QueueName>
): Stream.Stream<MessageNotification.MessageNotification, unknown, Messaging.Messaging> =>
  m.capabilities.push === "none"
    ? Stream.map(Consumer.stream(queues, { mode: "Hybrid", visibilityTimeout: "30 seconds" }), (message) =>
      MessageNotification.Message({ message }))
    : m.subscribe(queues, { visibilityTimeout: "30 seconds" })

const failedWithQueueNotFound = (exit: Exit.Exit<unknown, unknown>, q: string, what: string) => {
  assert.isTrue(Exit.isFailure(exit), `${what} ended by failing`)
  const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()
  assert.isTrue(Option.isSome(error), `${what} failed with a typed error: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`)
  const found = Option.getOrThrow(error) as { readonly _tag?: string; readonly queue?: string }
  assert.strictEqual(found._tag, "QueueNotFound", `${what}: ${JSON.stringify(found)}`)
  assert.strictEqual(found.queue, q)
}

export const push = ({ h, test }: Context) => {
  test("subscribe announces or delivers every message sent (without push: Consumer.stream polls them)", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const seen = new Set<string>()
      const fiber = yield* notificationsOf(m, [q]).pipe(
        Stream.runForEach((notification) =>
          notification._tag === "Message"
            ? Effect.andThen(Effect.sync(() => seen.add(notification.message.id)), m.ack(notification.message.receipt))
            : Effect.sync(() => Option.map(notification.messageId, (id) => seen.add(id)))
        ),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      // A subscription may need a moment to start listening; messages sent before that are the poll's job.
      yield* h.advance("200 millis")
      const ids = yield* m.sendBatch(q, ["a", "b", "c"])
      yield* h.eventually("every message is pushed", Effect.sync(() => ids.every((id) => seen.has(id))), "3 seconds")
      yield* Fiber.interrupt(fiber)
    }))

  test("interrupting a subscription releases it: what it held unemitted and later messages are for others, what it emitted stays the caller's (without push: a Consumer.stream)", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const held = yield* Deferred.make<Message.QueuedMessage>()
      // The reader takes the first delivery and holds it unacked: the subscription meanwhile
      // may claim the next ones into its buffer, unemitted.
      const fiber = yield* notificationsOf(m, [q]).pipe(
        Stream.runForEach((notification) =>
          notification._tag === "Message"
            ? Effect.andThen(Deferred.succeed(held, notification.message), Effect.never)
            : Effect.die(`a ${notification._tag} where a small message is pushed whole`)
        ),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* h.advance("200 millis")
      const first = yield* m.send(q, "first")
      yield* h.eventually("the first message is pushed", Deferred.isDone(held), "3 seconds")
      const holding = yield* Deferred.await(held)
      assert.strictEqual(holding.id, first)
      const buffered = yield* m.sendBatch(q, ["b1", "b2", "b3"])
      yield* h.advance("300 millis")
      yield* Fiber.interrupt(fiber)
      const later = yield* m.send(q, "later")
      yield* h.advance("200 millis")
      const received = yield* m.receive(q, long)
      assert.sameMembers(received.map((message) => message.id), [...buffered, later], "held unemitted: back at once; no ghost subscriber")
      yield* m.ack(holding.receipt)
      for (const message of received) yield* m.ack(message.receipt)
      assert.strictEqual((yield* m.stats(q)).depth, 0, "the emitted delivery was the caller's to ack")
    }))

  test("a delayed message reaches a hybrid consumer when due, not before", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const got: Array<Message.QueuedMessage> = []
      const fiber = yield* Consumer.stream([q], { mode: "Hybrid", visibilityTimeout: "30 seconds" }).pipe(
        Stream.runForEach((message) => Effect.andThen(Effect.sync(() => got.push(message)), m.ack(message.receipt))),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* m.send(q, "later", { delay: "2 seconds" })
      yield* h.advance("1500 millis")
      assert.strictEqual(got.length, 0, "not delivered before it is due")
      const fallback = Duration.toMillis(m.capabilities.fallbackPollingInterval)
      yield* h.eventually("delivered once due", Effect.sync(() => got.length === 1), Duration.millis(1000 + fallback))
      yield* Fiber.interrupt(fiber)
    }))

  test("every delayed message reaches a Hybrid consumer within 20 ms of its due time (p99); with a coarser declared delay precision (whole seconds): never early, within one step", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const total = 300
      const precision = m.capabilities.delayPrecision
      // Where delays count in steps, half a step past a whole second: rounded down it would be
      // early, a step too far late; within one step leaves the server half a step to show it.
      // Else whole seconds: PGMQ counts delays in seconds.
      const delayMs = precision === undefined ? 1000 : 1000 + Duration.toMillis(precision) / 2
      const boundMs = precision === undefined ? 20 : Duration.toMillis(precision)
      const due = new Map<string, number>()
      const lateness = new Map<string, number>()
      const fiber = yield* Consumer.run(
        [q],
        (message) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            lateness.set(message.id, now - due.get(message.id)!)
          }),
        { mode: "Hybrid", concurrency: 16, visibilityTimeout: "30 seconds" }
      ).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      yield* h.advance("200 millis")
      // Time moves a millisecond at a time, so that on virtual time too lateness is measured, not stepped over.
      const millis = (n: number) => Effect.repeat(h.advance("1 millis"), { times: n - 1 })
      for (let n = 0; n < total; n++) {
        const sentAt = yield* Clock.currentTimeMillis
        const id = yield* m.send(q, n, { delay: Duration.millis(delayMs) })
        due.set(id, sentAt + delayMs)
        yield* millis(10)
      }
      for (let waited = 0; lateness.size < total && waited < delayMs + 3000; waited += 5) yield* millis(5)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(lateness.size, total, "every message sent was received")
      assert.isTrue([...lateness.keys()].every((id) => due.has(id)), "nothing else was received")
      const sorted = [...lateness.values()].sort((a, b) => a - b)
      const p99 = sorted[Math.ceil(0.99 * total) - 1]!
      const late = sorted.filter((ms) => ms > boundMs).length
      assert.isAtLeast(sorted[0]!, 0, "none before it was due")
      assert.isAtMost(p99, boundMs, `p99 lateness ${p99} ms; ${late} of ${total} later than ${boundMs} ms; max ${sorted.at(-1)} ms`)
    }), { alone: true })

  test("push loss is recovered by the fallback poll within one poll period", () =>
    Effect.gen(function*() {
      const real = yield* Messaging.Messaging
      const q = yield* freshQueue
      const fallback = Duration.seconds(1)
      // The provider's push goes silent; Hybrid must still deliver through its poll.
      const deaf = Layer.succeed(Messaging.Messaging, {
        ...real,
        capabilities: { ...real.capabilities, push: "signal", requiresFallbackPolling: true, fallbackPollingInterval: fallback },
        subscribe: () => Stream.never
      })
      const got: Array<string> = []
      const fiber = yield* Consumer.stream([q], { mode: "Hybrid", visibilityTimeout: "30 seconds" }).pipe(
        Stream.runForEach((message) => Effect.andThen(Effect.sync(() => got.push(message.id)), real.ack(message.receipt))),
        Effect.provide(deaf),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* h.advance("100 millis")
      const id = yield* real.send(q, "missed by push")
      yield* h.eventually("delivered by poll", Effect.sync(() => got.includes(id)), "1200 millis")
      yield* Fiber.interrupt(fiber)
    }))

  test("deleting a queue ends its subscriptions and consumers with QueueNotFound within a second; a queue made again under its name serves a new one", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const subscription = yield* notificationsOf(m, [q]).pipe(Stream.runDrain, Effect.forkChild)
      const consumer = yield* Consumer.run([q], () => Effect.void, { visibilityTimeout: "30 seconds" }).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      yield* h.advance("200 millis")
      assert.isUndefined(subscription.pollUnsafe(), "the subscription runs while its queue exists")
      assert.isUndefined(consumer.pollUnsafe(), "so does the consumer")
      yield* m.deleteQueue(q)
      yield* h.eventually(
        "the subscription and the consumer ended",
        Effect.sync(() => subscription.pollUnsafe() !== undefined && consumer.pollUnsafe() !== undefined),
        endsWithin
      )
      failedWithQueueNotFound(yield* Fiber.await(subscription), q, "the subscription")
      failedWithQueueNotFound(yield* Fiber.await(consumer), q, "Consumer.run")

      yield* m.ensureQueue(q)
      const seen: Array<string> = []
      const again = yield* notificationsOf(m, [q]).pipe(
        Stream.runForEach((n) =>
          n._tag === "Message"
            ? Effect.andThen(Effect.sync(() => seen.push(n.message.id)), m.ack(n.message.receipt))
            : Effect.sync(() => Option.map(n.messageId, (id) => seen.push(id)))
        ),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* h.advance("200 millis")
      const id = yield* m.send(q, "after")
      yield* h.eventually("the new subscription sees the new queue's message", Effect.sync(() => seen.includes(id)), "3 seconds")
      yield* Fiber.interrupt(again)
    }))
}
