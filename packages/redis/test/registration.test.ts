/**
 * Deferred registration: a subscription's blocking XREADGROUP claims entries
 * before their deadlines exist (claimScripts.register sets them right after). The
 * claim must be live in between, settles that overtake the registration must
 * win, and an entry whose registration never comes (its reader crashed) must
 * not be stranded: the janitor gives it a deadline and it is delivered again.
 * Readers are simulated with a raw client reading through the layer's group.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type Message, Messaging, type QueueName } from "@conveyor/core"
// The provider's internals are not exported: the package's private `#internal/*` imports reach them.
import * as Scripts from "#internal/claimScripts"
import { layer, raw, uniquePrefix, uniqueQueue } from "./support.ts"

const group = "conveyor"

/** Entries read through the group as `consumer`, with no registration: what a reader that crashed right after its read leaves. */
const readRaw = (client: { sendCommand: (args: Array<string>) => Promise<unknown> }, stream: string, consumer: string, count: number) =>
  Effect.promise(async () => {
    const reply = await client.sendCommand(["XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "STREAMS", stream, ">"])
    const entries = reply instanceof Map ? [...reply.values()][0] : Object.values(reply as object)[0]
    return (entries as Array<[string, unknown]>).map(([id]) => id)
  })

const receiptOf = (queue: QueueName.QueueName, entry: string): Message.Receipt => ({
  provider: "redis",
  queue,
  messageId: entry,
  token: { entry, count: "1" }
})

describe("deferred registration", () => {
  it.live("settles that overtake the registration win: ack, extend and nack of an unregistered claim, and the registration after them sets no deadline", () => {
    const prefix = uniquePrefix("overtake")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const client = yield* raw()
      const q = uniqueQueue("overtake")
      yield* Effect.acquireRelease(m.ensureQueue(q), () => Effect.ignore(m.deleteQueue(q)))
      yield* m.sendBatch(q, ["acked", "extended", "nacked"])
      const stream = `${prefix}q:${q}`
      const [acked, extended, nacked] = yield* readRaw(client, stream, "reader", 3)
      assert.strictEqual((yield* m.stats(q)).inFlight, 3, "claims are in flight before they are registered")
      yield* m.ack(receiptOf(q, acked!))
      assert.strictEqual((yield* Effect.flip(m.ack(receiptOf(q, acked!))))._tag, "StaleReceipt", "settled once only")
      yield* m.extendVisibility(receiptOf(q, extended!), "2 minutes")
      yield* m.nack(receiptOf(q, nacked!))
      const lua = Scripts.register
      const keys = [stream, `${prefix}v:${q}:${group}`, `${prefix}r:${q}:${group}`]
      const set: unknown = yield* Effect.promise(() =>
        client.sendCommand(["EVAL", lua.lua, String(keys.length), ...keys, group, "1000", acked!, extended!, nacked!])
      )
      assert.strictEqual(set, 0, "no deadline set: one is acked, one extended, one nacked")
      const deadline = Number(yield* Effect.promise(() => client.sendCommand(["ZSCORE", keys[1]!, `${extended!}:1`])))
      const time: unknown = yield* Effect.promise(() => client.sendCommand(["TIME"]))
      assert.isArray(time)
      assert.isAbove(deadline, Number((time as ReadonlyArray<unknown>)[0]) * 1000 + 100_000, "the extension is kept, not replaced by the registration's deadline")
      const again = yield* m.receive(q, { max: 10, visibilityTimeout: "30 seconds" })
      assert.deepStrictEqual(again.map((message) => [message.payload, message.receiveCount]), [["nacked", 2]])
    }).pipe(Effect.scoped, Effect.provide(layer({ prefix })))
  })

  it.live("a claim whose registration never came (its reader crashed) gets a deadline from the janitor and is delivered again; its old receipt is stale", () => {
    const prefix = uniquePrefix("janitor")
    return Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const client = yield* raw()
      const q = uniqueQueue("janitor")
      yield* Effect.acquireRelease(m.ensureQueue(q), () => Effect.ignore(m.deleteQueue(q)))
      yield* m.send(q, "stranded")
      const [entry] = yield* readRaw(client, `${prefix}q:${q}`, "crashed", 1)
      const readAt = Date.now()
      let again: ReadonlyArray<Message.QueuedMessage> = []
      while (again.length === 0 && Date.now() - readAt < 15_000) {
        again = yield* m.receive(q, { visibilityTimeout: "30 seconds" })
        if (again.length === 0) yield* Effect.sleep("100 millis")
      }
      const waited = Date.now() - readAt
      assert.strictEqual(again.length, 1, "delivered again")
      assert.strictEqual(again[0]!.payload, "stranded")
      assert.strictEqual(again[0]!.receiveCount, 2)
      assert.isAtLeast(waited, Scripts.janitorPeriodMs, "not taken from a reader that may still register it")
      assert.isAtMost(waited, 3 * Scripts.janitorPeriodMs, "within two janitor periods of becoming old enough")
      assert.strictEqual((yield* Effect.flip(m.ack(receiptOf(q, entry!))))._tag, "StaleReceipt")
      yield* m.ack(again[0]!.receipt)
      assert.strictEqual((yield* m.stats(q)).depth, 0)
    }).pipe(Effect.scoped, Effect.provide(layer({ prefix })))
  })
})
