/**
 * How a message looks on the wire. Bodies are JSON bytes with content-type
 * `application/json`; user headers travel as AMQP headers.
 *
 * The message id is a UUIDv7, whose first 48 bits are the first send in epoch
 * milliseconds (AMQP's own timestamp has whole seconds only); the id and so
 * `enqueuedAt` are kept across requeues. Carrying the time in the id rather
 * than in a header spares every send a header table, which costs both client
 * and broker (a plain send was ~15% slower with one). The id is trusted as a
 * time only when the AMQP timestamp agrees to the second, so another
 * publisher's ids never pass for one.
 *
 * Our only header, `x-conveyor-claims` (prefixed `x-conveyor-`, never shown
 * to the user), counts the claims earlier copies of this message had.
 *
 * `receiveCount` = earlier claims + the broker's count for this copy: on a
 * quorum queue `x-delivery-count + 1` (exact), on a classic queue 1, or 2 when
 * the `redelivered` flag is set (a lower bound: a classic queue does not count
 * its own redeliveries after a channel loss). Every requeue the provider does
 * itself (a nack, a visibility timeout) republishes the message with its
 * claims so far, so those are counted exactly on both kinds.
 */
import type amqp from "amqplib"
import type { Message, QueueName } from "@conveyor/core"

export const claimsHeader = "x-conveyor-claims"

/** Headers the broker or this provider adds, hidden from `QueuedMessage.headers`. */
const internalHeader = /^x-(conveyor-|death$|first-death-|last-death-|delivery-count$)/

const toInt = (value: unknown): number | undefined => {
  const n = typeof value === "bigint" ? Number(value) : typeof value === "string" ? Number(value) : value
  return typeof n === "number" && Number.isFinite(n) ? n : undefined
}

/** A new message id: a UUIDv7 for `sentAt` (RFC 9562: 48-bit milliseconds, version 7, random rest). */
export const newMessageId = (sentAt: number): Message.MessageId => {
  const random = crypto.randomUUID() // version 4: its variant bits are already v7's
  const ms = sentAt.toString(16).padStart(12, "0")
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${random.slice(15)}`
}

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

/** The first send of a message whose id is a UUIDv7 agreeing with its AMQP timestamp. */
const sentAtOfId = (message: amqp.Message): number | undefined => {
  const id = message.properties.messageId
  if (typeof id !== "string" || !uuidV7.test(id)) return undefined
  const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
  return toInt(message.properties.timestamp) === Math.floor(ms / 1000) ? ms : undefined
}

export const publishOptions = (
  messageId: Message.MessageId,
  headers: Message.Headers,
  sentAt: number,
  priorClaims: number
): amqp.Options.Publish & { readonly messageId: Message.MessageId } => {
  const all = priorClaims > 0 ? { ...headers, [claimsHeader]: priorClaims } : headers
  const options = {
    messageId,
    persistent: true,
    mandatory: true,
    contentType: "application/json",
    timestamp: Math.floor(sentAt / 1000)
  }
  // No table at all when there is nothing to put in it.
  return Object.keys(all).length === 0 ? options : { ...options, headers: all }
}

export const receiveCount = (message: amqp.Message): number => {
  const headers = message.properties.headers ?? {}
  const prior = toInt(headers[claimsHeader]) ?? 0
  const deliveries = toInt(headers["x-delivery-count"])
  return prior + (deliveries !== undefined ? deliveries + 1 : message.fields.redelivered ? 2 : 1)
}

/** When the message was sent: from its UUIDv7 id, else its AMQP timestamp, else `fallback` (another publisher's bare message). */
export const sentAt = (message: amqp.Message, fallback: number): number =>
  sentAtOfId(message) ??
    (typeof message.properties.timestamp === "number" ? message.properties.timestamp * 1000 : fallback)

export const messageId = (message: amqp.Message): Message.MessageId =>
  typeof message.properties.messageId === "string" && message.properties.messageId !== ""
    ? message.properties.messageId
    : crypto.randomUUID()

export const userHeaders = (message: amqp.Message): Message.Headers => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(message.properties.headers ?? {})) {
    if (internalHeader.test(key)) continue
    if (typeof value === "string") out[key] = value
    else if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") out[key] = String(value)
    else if (Buffer.isBuffer(value)) out[key] = value.toString("utf8")
  }
  return out
}

/** The body as JSON, or `undefined` when it is not JSON (another publisher's bytes). */
export const payload = (message: amqp.Message): Message.Json | undefined => {
  try {
    return JSON.parse(message.content.toString("utf8")) as Message.Json
  } catch {
    return undefined
  }
}

export const toQueued = (
  queue: QueueName.QueueName,
  message: amqp.Message,
  body: Message.Json,
  receipt: Message.Receipt,
  visibleUntil: number,
  sentAt: number
): Message.QueuedMessage => ({
  queue,
  id: receipt.messageId,
  receipt,
  payload: body,
  headers: userHeaders(message),
  receiveCount: receiveCount(message),
  enqueuedAt: new Date(sentAt),
  visibleUntil: new Date(visibleUntil)
})
