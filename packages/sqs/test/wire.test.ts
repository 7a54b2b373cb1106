/**
 * What the provider does on the wire, counted at the emulator: batching of
 * sends and settlements, the queue-URL cache, the dead-letter topology, and
 * staleness detected without trusting the server's answers.
 */
import { GetQueueAttributesCommand, GetQueueUrlCommand, SendMessageCommand } from "@aws-sdk/client-sqs"
import { type Message, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { emulator, provider, rawClient, uniqueQueue, withQueues } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

const setup = (extra: Parameters<typeof provider>[1] = {}) =>
  Effect.gen(function*() {
    const e = yield* emulator
    const m = yield* provider(e.endpoint, extra)
    const q = uniqueQueue("wire")
    yield* withQueues(m, [q])
    return { e, m, q }
  })

/** How many `action` requests `effect` made. */
const counting = <A, E, R>(e: { readonly calls: (action: string) => number }, action: string, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = e.calls(action)
    const value = yield* effect
    return { value, calls: e.calls(action) - before }
  })

describe("sqs: on the wire", () => {
  it.live("sendBatch goes out 10 per SendMessageBatch, ids in input order", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      const { calls, value: ids } = yield* counting(e, "SendMessageBatch", m.sendBatch(q, Array.from({ length: 25 }, (_, n) => ({ n }))))
      assert.strictEqual(calls, 3)
      assert.strictEqual(new Set(ids).size, 25)
      const received: Array<Message.QueuedMessage> = []
      while (received.length < 25) received.push(...(yield* m.receive(q, { ...long, max: 25 })))
      const byId = new Map(received.map((message) => [message.id, message.payload]))
      ids.forEach((id, n) => assert.deepStrictEqual(byId.get(id), { n }))
    }), 30_000)

  it.live("a batch is split so that no call exceeds the size limit", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      const payloads = Array.from({ length: 4 }, (_, n) => `${n}`.padEnd(100 * 1024, "x"))
      const { calls, value: ids } = yield* counting(e, "SendMessageBatch", m.sendBatch(q, payloads))
      assert.strictEqual(ids.length, 4)
      assert.strictEqual(calls, 2, "two 100 KiB messages per 256 KiB call")
    }), 30_000)

  it.live("concurrent sends and acks coalesce into batch calls", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      const sends = yield* counting(e, "SendMessageBatch", Effect.forEach(Array.from({ length: 10 }, (_, n) => n), (n) => m.send(q, n), { concurrency: "unbounded" }))
      assert.isAtMost(sends.calls, 2, `10 concurrent sends took ${sends.calls} calls`)
      const received = yield* m.receive(q, long)
      assert.strictEqual(received.length, 10)
      const acks = yield* counting(e, "DeleteMessageBatch", Effect.forEach(received, (message) => m.ack(message.receipt), { concurrency: "unbounded" }))
      assert.isAtMost(acks.calls, 2, `10 concurrent acks took ${acks.calls} calls`)
      assert.strictEqual(e.calls("DeleteMessage"), 0)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }), 30_000)

  it.live("in a shared batch, a handle SQS refuses fails only its own caller", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      yield* m.sendBatch(q, [1, 2, 3])
      const received = yield* m.receive(q, long)
      const real = received[0]!.receipt
      const token = real.token as { handle: string }
      // Held as far as this layer knows, but SQS does not recognise the handle.
      const forged: Message.Receipt = { ...real, messageId: "forged", token: { ...token, handle: `${token.handle}x` } }
      const { calls, value: results } = yield* counting(
        e,
        "ChangeMessageVisibilityBatch",
        Effect.forEach([...received.map((message) => message.receipt), forged], (receipt) =>
          Effect.result(m.extendVisibility(receipt, "1 minute")), { concurrency: "unbounded" })
      )
      assert.isAtMost(calls, 2)
      assert.deepStrictEqual(results.map((result) => result._tag), ["Success", "Success", "Success", "Failure"])
      const failure = results[3]!
      assert.strictEqual(failure._tag === "Failure" ? failure.failure._tag : undefined, "StaleReceipt")
      for (const message of received) yield* m.ack(message.receipt)
    }), 30_000)

  it.live("staleness is decided here, not by the server: no request for a lapsed or settled receipt", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      yield* m.send(q, "once")
      const [message] = yield* m.receive(q, long)
      yield* m.ack(message!.receipt)
      const before = e.calls()
      for (const settle of [m.ack(message!.receipt), m.nack(message!.receipt), m.nack(message!.receipt, { requeue: false }), m.extendVisibility(message!.receipt, "1 minute")]) {
        assert.strictEqual((yield* Effect.flip(settle))._tag, "StaleReceipt")
      }
      assert.strictEqual(e.calls(), before, "a second settlement never reached the emulator (which would accept the delete)")
    }), 30_000)

  it.live("queue URLs are resolved once, and forgotten when the queue goes", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      const other = yield* provider(e.endpoint)
      const first = yield* counting(e, "GetQueueUrl", Effect.forEach([1, 2, 3, 4, 5], (n) => other.send(q, n)))
      assert.strictEqual(first.calls, 1, "a layer that did not create the queue looks its URL up once")
      // Deleted behind the provider's back: the cached URL fails once, then is looked up afresh.
      yield* m.deleteQueue(q)
      assert.strictEqual((yield* Effect.flip(other.send(q, 6)))._tag, "QueueNotFound")
      yield* m.ensureQueue(q)
      const again = yield* counting(e, "GetQueueUrl", other.send(q, 7))
      assert.strictEqual(again.calls, 1)
      assert.strictEqual((yield* m.stats(q)).visible, 1)
    }), 30_000)

  it.live("ensureQueue binds <q>_dlq with a RedrivePolicy that SQS applies to messages never settled", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup({ maxReceiveCount: 2 })
      const raw = yield* rawClient(e.endpoint)
      const dlq = QueueName.deadLetter(q)
      assert.includeMembers([...(yield* m.listQueues)], [q, dlq])
      const { QueueUrl } = yield* Effect.promise(() => raw.send(new GetQueueUrlCommand({ QueueName: q })))
      const { Attributes } = yield* Effect.promise(() =>
        raw.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["RedrivePolicy", "MaximumMessageSize"] }))
      )
      const policy = JSON.parse(Attributes!.RedrivePolicy!)
      assert.isTrue(String(policy.deadLetterTargetArn).endsWith(`:${dlq}`))
      assert.strictEqual(Number(policy.maxReceiveCount), 2)
      assert.strictEqual(Attributes!.MaximumMessageSize, String(256 * 1024))
      yield* m.send(q, "crashes its consumer")
      for (let i = 1; i <= 2; i++) {
        const [message] = yield* m.receive(q, { max: 1, visibilityTimeout: "1 second" })
        assert.strictEqual(message?.receiveCount, i)
        yield* Effect.sleep("1100 millis")
      }
      assert.deepStrictEqual(yield* m.receive(q, long), [])
      const [dead] = yield* m.receive(dlq, long)
      assert.strictEqual(dead?.payload, "crashes its consumer")
    }), 30_000)

  it.live("a body another producer wrote that is not JSON goes to the dead-letter queue, never to a consumer", () =>
    Effect.gen(function*() {
      const { e, m, q } = yield* setup()
      const raw = yield* rawClient(e.endpoint)
      const { QueueUrl } = yield* Effect.promise(() => raw.send(new GetQueueUrlCommand({ QueueName: q })))
      yield* Effect.promise(() => raw.send(new SendMessageCommand({ QueueUrl, MessageBody: "not json {" })))
      yield* m.send(q, { fine: true })
      const received = yield* m.receive(q, long)
      assert.deepStrictEqual(received.map((message) => message.payload), [{ fine: true }])
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.deadLettered, 1)
      assert.strictEqual(stats.depth, 1)
    }), 30_000)
})
