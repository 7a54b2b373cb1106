/**
 * What travels through a queue. Payloads are JSON values at this level: PGMQ
 * stores them as jsonb and AMQP carries them as `application/json` bytes, so
 * other clients of either read them unchanged.
 */
import type { QueueName } from "./QueueName.ts"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

export type Headers = Readonly<Record<string, string>>

/** PGMQ `msg_id` as decimal text, the AMQP `message-id` we assign, or a memory counter. */
export type MessageId = string

/**
 * Proof of one delivery. `token` is the provider's own evidence (PGMQ's
 * `read_ct` and claim time, an AMQP channel and delivery tag, ...); only the
 * provider named in `provider` can interpret it.
 */
export interface Receipt {
  readonly provider: string
  readonly queue: QueueName
  readonly messageId: MessageId
  readonly token: unknown
}

export interface QueuedMessage {
  readonly queue: QueueName
  readonly id: MessageId
  readonly receipt: Receipt
  readonly payload: Json
  readonly headers: Headers
  /** How many times this message has been claimed, this claim included. */
  readonly receiveCount: number
  readonly enqueuedAt: Date
  readonly visibleUntil?: Date
}

/**
 * Headers as another client wrote them: every entry of a JSON object is kept,
 * a string as it is and any other JSON value as its JSON text (`5` → `"5"`),
 * so nothing a producer wrote vanishes. Anything but an object carries none.
 */
export const headersFrom = (value: unknown): Headers => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return {}
  const headers: Record<string, string> = {}
  for (const [key, v] of Object.entries(value)) {
    if (v !== undefined) headers[key] = typeof v === "string" ? v : JSON.stringify(v)
  }
  return headers
}
