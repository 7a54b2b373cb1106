/**
 * Queue names no operation may accept, cast past `QueueName` validation as an
 * untyped caller (or a forged receipt) could, and every `Messaging` operation
 * on one. The conformance suite asserts that each fails with
 * `InvalidQueueName`; a provider's own tests run the same operations to show
 * that nothing reached its server (what only the provider can see).
 */
import type { Message, Messaging, QueueName } from "@conveyor/core"
import { type Effect, Stream } from "effect"

export const hostileNames: ReadonlyArray<string> = [
  "x'; drop table pgmq.meta; --",
  "a b",
  "",
  "x".repeat(64),
  "Orders",
  "a.b",
  "../etc"
]

const brief = { visibilityTimeout: "1 second" } as const

/** Every operation that names a queue, named, on `name` (cast: it need not be valid). */
export const everyOperation = (
  m: Messaging.Messaging["Service"],
  name: string
): ReadonlyArray<readonly [string, Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>]> => {
  const q = name as QueueName.QueueName
  return [
    ["ensureQueue", m.ensureQueue(q)],
    ["deleteQueue", m.deleteQueue(q)],
    ["queueExists", m.queueExists(q)],
    ["purgeQueue", m.purgeQueue(q)],
    ["send", m.send(q, 1)],
    ["sendBatch", m.sendBatch(q, [1])],
    ["receive", m.receive(q, brief)],
    ["fetch", m.fetch(q, "1", brief)],
    ["stats", m.stats(q)],
    ["subscribe", Stream.runDrain(m.subscribe([q], brief))]
  ]
}

/** Every settlement of `receipt` with its queue forged to `name`. */
export const everySettlement = (
  m: Messaging.Messaging["Service"],
  receipt: Message.Receipt,
  name: string
): ReadonlyArray<readonly [string, Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>]> => {
  const forged: Message.Receipt = { ...receipt, queue: name as QueueName.QueueName }
  return [
    ["ack", m.ack(forged)],
    ["nack", m.nack(forged)],
    ["nack (dead-letter)", m.nack(forged, { requeue: false })],
    ["extendVisibility", m.extendVisibility(forged, "1 minute")]
  ]
}
