/**
 * Bad input is refused with a typed error before anything reaches the SDK:
 * the emulator's request count proves nothing was sent. Limits are SQS's
 * real ones, not the emulator's (fauxqs accepts a delay of 901 s and bodies
 * up to 1 MiB).
 */
import { type Message, type Messaging, QueueName } from "@conveyor/core"
import { BadInput } from "@conveyor/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { emulator, provider, uniqueQueue, withQueues } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

/** Runs `attempt`, expecting it to fail with `tag` while the emulator answers no request. */
const refusedUnsent = <A, E extends { readonly _tag: string; readonly message: string }>(
  calls: () => number,
  attempt: Effect.Effect<A, E>,
  tag: E["_tag"]
) =>
  Effect.gen(function*() {
    const before = calls()
    const error = yield* Effect.flip(attempt)
    assert.strictEqual(error._tag, tag)
    assert.strictEqual(calls(), before, `nothing reached the emulator for a ${tag}`)
    return error
  })

const setup = (extra: Parameters<typeof provider>[1] = {}) =>
  Effect.gen(function*() {
    const e = yield* emulator
    const m = yield* provider(e.endpoint, extra)
    const q = uniqueQueue("bad")
    yield* withQueues(m, [q])
    return { e, m, q, calls: () => e.calls() }
  })

const depth = (m: Messaging.Messaging["Service"], q: QueueName.QueueName) => Effect.map(m.stats(q), (s) => s.depth)

describe("sqs: bad input", () => {
  it.live("a body over 256 KiB (with its headers) is MessageTooLarge; one exactly at the limit goes through", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      const limit = 256 * 1024
      const atLimit = "x".repeat(limit - 2) // the JSON quotes make it exactly `limit` bytes
      const tooBig = yield* refusedUnsent(calls, m.send(q, `${atLimit}y`), "MessageTooLarge")
      assert.include(tooBig.message, String(limit))
      // Headers count towards SQS's limit: name, type and value.
      yield* refusedUnsent(calls, m.send(q, "x".repeat(limit - 20), { headers: { tenant: "acme-corporation" } }), "MessageTooLarge")
      yield* refusedUnsent(calls, m.sendBatch(q, ["fine", `${atLimit}y`]), "MessageTooLarge")
      assert.strictEqual(yield* depth(m, q), 0, "a refused batch sends none of its messages")
      yield* m.send(q, atLimit)
      const [message] = yield* m.receive(q, long)
      assert.strictEqual((message?.payload as string).length, limit - 2)
    }), 30_000)

  it.live("a larger limit is honoured when configured (up to SQS's 1 MiB)", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup({ maxPayloadBytes: 1024 * 1024 })
      const big = "z".repeat(700 * 1024)
      yield* m.send(q, big)
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message?.payload, big)
      yield* refusedUnsent(calls, m.send(q, "z".repeat(1024 * 1024)), "MessageTooLarge")
    }), 30_000)

  it.live("delays over SQS's 900 s are refused (the emulator would take 901); 900 s is kept", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      const error = yield* refusedUnsent(calls, m.send(q, "late", { delay: "901 seconds" }), "Unsupported")
      assert.include(error.message, "900")
      yield* refusedUnsent(calls, m.sendBatch(q, ["a", "b"], { delay: Duration.millis(900_001) }), "Unsupported")
      yield* m.send(q, "due in 15 minutes", { delay: "900 seconds" })
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.delayed, 1)
      assert.strictEqual(stats.visible, 0)
    }), 30_000)

  it.live("visibility timeouts and nack delays over SQS's 12 hours are refused", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      yield* refusedUnsent(calls, m.receive(q, { max: 1, visibilityTimeout: Duration.seconds(43_201) }), "Unsupported")
      yield* m.send(q, "held")
      const [message] = yield* m.receive(q, long)
      yield* refusedUnsent(calls, m.extendVisibility(message!.receipt, "13 hours"), "Unsupported")
      yield* refusedUnsent(calls, m.nack(message!.receipt, { delay: "13 hours" }), "Unsupported")
      yield* m.ack(message!.receipt)
    }), 30_000)

  // The errors are the conformance suite's; here: not one request reached the emulator.
  it.live("invalid queue names, in operations and in a real receipt, never reach SQS", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      // The names every provider refuses, and ones that would mean something in a queue URL.
      const hostile = [...BadInput.hostileNames, "Bad-Name", "q; DROP TABLE t", "../000000000000/other", "https://evil/q"]
      yield* m.send(q, "real")
      const [message] = yield* m.receive(q, long)
      const before = calls()
      for (const name of hostile) {
        for (const [operation, attempt] of [...BadInput.everyOperation(m, name), ...BadInput.everySettlement(m, message!.receipt, name)]) {
          yield* Effect.flip(attempt).pipe(Effect.orElseSucceed(() => assert.fail(`${operation}(${JSON.stringify(name)}) succeeded`)))
        }
      }
      assert.strictEqual(calls(), before, "nothing reached the emulator")
      yield* m.ack(message!.receipt)
    }), 30_000)

  it.live("headers SQS cannot carry are refused, naming the header; ten valid ones round-trip exactly", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, "v"]))
      const tooMany = yield* refusedUnsent(calls, m.send(q, 1, { headers: eleven }), "InvalidPayload")
      assert.include(tooMany.message, "10")
      for (const [name, value] of [["AWS.trace", "v"], ["amazon.x", "v"], ["has space", "v"], ["..x", "v"], ["x.", "v"], ["", "v"], ["empty", ""], ["nul", "a\u0000b"]]) {
        const error = yield* refusedUnsent(calls, m.send(q, 1, { headers: { ok: "fine", [name!]: value! } }), "InvalidPayload")
        assert.include(error.message, JSON.stringify(name))
      }
      assert.strictEqual(yield* depth(m, q), 0)
      const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`h-${i}.x_${i}`, `välue ✓ ${i} 🚀 "quoted"`]))
      yield* m.send(q, 1, { headers: ten })
      const [message] = yield* m.receive(q, long)
      assert.deepStrictEqual(message?.headers, ten)
    }), 30_000)

  it.live("a traced send's traceparent is one of SQS's 10 attributes", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      const headers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, "v"]))
      yield* m.send(q, "traced", { headers: headers(9) }).pipe(Effect.withSpan("caller"))
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(Object.keys(message!.headers).length, 10)
      assert.match(message!.headers.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
      yield* refusedUnsent(calls, m.send(q, "traced", { headers: headers(10) }).pipe(Effect.withSpan("caller")), "InvalidPayload")
      yield* m.send(q, "untraced", { headers: headers(10) })
    }), 30_000)

  it.live("payload strings SQS or the emulator would refuse raw (U+FFFE, U+FFFF, beyond U+FFFF) travel escaped, come back unchanged", () =>
    Effect.gen(function*() {
      const { m, q } = yield* setup()
      const payload = { odd: "a\uFFFEb\uFFFFc", control: "\u0001\u001f", lone: "\uD800", emoji: "🚀", nested: ["\uFFFF"] }
      yield* m.send(q, payload)
      const [message] = yield* m.receive(q, long)
      assert.deepStrictEqual(message?.payload, payload)
    }), 30_000)

  it.live("a receipt of another provider is refused without a request", () =>
    Effect.gen(function*() {
      const { calls, m, q } = yield* setup()
      const receipt: Message.Receipt = { provider: "rabbitmq", queue: q, messageId: "1", token: { channel: 1 } }
      const error = yield* refusedUnsent(calls, m.ack(receipt), "ProviderError")
      assert.include(error.message, "rabbitmq")
      yield* refusedUnsent(calls, m.nack({ ...receipt, provider: "sqs", token: "not a token" }), "StaleReceipt")
    }), 30_000)

  it.live("sending to a queue that does not exist is QueueNotFound", () =>
    Effect.gen(function*() {
      const { m } = yield* setup()
      const missing = QueueName.makeUnsafe(`never_${Math.random().toString(36).slice(2, 8)}`)
      assert.strictEqual((yield* Effect.flip(m.send(missing, 1)))._tag, "QueueNotFound")
      assert.strictEqual((yield* Effect.flip(m.receive(missing, long)))._tag, "QueueNotFound")
      assert.isFalse(yield* m.queueExists(missing))
    }), 30_000)
})
