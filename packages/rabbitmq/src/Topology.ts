/**
 * The AMQP objects a queue is made of. `ensureQueue("orders")` declares
 *
 * - `orders`: durable, classic or quorum, dead-lettering to `orders_dlx`;
 * - `orders_dlx`: a durable fanout exchange bound to `orders_dlq`;
 * - `orders_dlq`: durable, same kind as `orders`; `nack(..., { requeue: false })` lands here.
 *
 * Delayed delivery needs no plugin: a message due in `d` ms is published to
 * `orders_delay_<d>`, a classic queue whose per-queue TTL is `d` and whose
 * dead-letter target is `orders` through the default exchange. Delays are
 * rounded *up* to two significant digits (a message is never early, at most
 * ~10% late) so jittered backoffs share a bounded set of delay queues. Delay
 * queues expire (`x-expires`) two minutes after their TTL once unused; the
 * provider redeclares them at least once a minute while it publishes to them.
 *
 * A queue of yours named like one of these derived names (`x_dlq`, `x_delay_100`)
 * collides with the topology of `x`; pick names that do not end that way.
 */
import { QueueName } from "@conveyor/core"

export type QueueKind = "classic" | "quorum"

export const deadLetterExchange = (queue: QueueName.QueueName): string => `${queue}_dlx`

/** The same name core gives it (`QueueName.deadLetter`), so `receive` reads it like any queue. */
export const deadLetterQueue: (queue: QueueName.QueueName) => QueueName.QueueName = QueueName.deadLetter

export const delayQueue = (queue: QueueName.QueueName, delayMs: number): string => `${queue}_delay_${delayMs}`

/** How long an unused delay queue outlives its TTL before the broker removes it. */
export const delayQueueGraceMs = 120_000

/** Rounds a delay up to two significant digits, at least 1 ms. */
export const quantizeDelay = (delayMs: number): number => {
  const ms = Math.max(1, Math.ceil(delayMs))
  if (ms < 100) return ms
  const unit = 10 ** (Math.floor(Math.log10(ms)) - 1)
  return Math.ceil(ms / unit) * unit
}

export const queueArguments = (queue: QueueName.QueueName, kind: QueueKind) => ({
  "x-queue-type": kind,
  "x-dead-letter-exchange": deadLetterExchange(queue)
})

export const deadLetterQueueArguments = (kind: QueueKind) => ({ "x-queue-type": kind })

export const delayQueueArguments = (queue: QueueName.QueueName, delayMs: number) => ({
  "x-queue-type": "classic",
  "x-message-ttl": delayMs,
  "x-dead-letter-exchange": "",
  "x-dead-letter-routing-key": queue,
  "x-expires": delayMs + delayQueueGraceMs
})
