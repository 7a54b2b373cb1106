/**
 * Stream entries to and from Conveyor messages. An entry's fields: `p` the
 * payload (JSON text), `h` the headers (JSON object text, absent when empty),
 * and for messages that were delayed or dead-lettered `id` (the message id
 * given at send, since their entry id is assigned later) and `t` (when they
 * were first enqueued, server ms). Otherwise the message id is the entry id
 * and its time is the enqueue time.
 */
import type { Message, QueueName } from "@conveyor/core"

export const provider = "redis"

/** What proves one claim: the entry and the PEL delivery count of that claim. */
export interface Token {
  readonly entry: string
  readonly count: string
}

export const isToken = (token: unknown): token is Token =>
  typeof token === "object" && token !== null && "entry" in token && "count" in token &&
  typeof token.entry === "string" && typeof token.count === "string"

export const encodeHeaders = (headers: Message.Headers | undefined): string =>
  headers === undefined || Object.keys(headers).length === 0 ? "" : JSON.stringify(headers)

const entryTime = (entry: string) => Number(entry.slice(0, entry.indexOf("-")))

export interface Claimed {
  readonly entry: string
  readonly count: number
  readonly fields: ReadonlyArray<string>
}

export interface ClaimReply {
  readonly now: number
  /** Server ms when something of this queue falls due (-1: nothing scheduled). */
  readonly nextDue: number
  readonly claimed: ReadonlyArray<Claimed>
}

export const claimReply = (reply: ReadonlyArray<unknown>): ClaimReply => {
  const claimed: Array<Claimed> = []
  for (let i = 2; i < reply.length; i += 3) {
    claimed.push({ entry: String(reply[i]), count: Number(reply[i + 1]), fields: reply[i + 2] as ReadonlyArray<string> })
  }
  return {
    now: Number(reply[0]),
    nextDue: Number(reply[1]),
    claimed
  }
}

/** The message of a claimed entry, or the reason it is not one of ours (it is dead-lettered). */
export const toQueued = (
  queue: QueueName.QueueName,
  claimed: Claimed,
  visibleUntil: Date
): Message.QueuedMessage | string => {
  let payloadText: string | undefined
  let headersText: string | undefined
  let id: string | undefined
  let time: string | undefined
  const fields = claimed.fields
  for (let i = 0; i < fields.length; i += 2) {
    switch (fields[i]) {
      case "p":
        payloadText = fields[i + 1]
        break
      case "h":
        headersText = fields[i + 1]
        break
      case "id":
        id = fields[i + 1]
        break
      case "t":
        time = fields[i + 1]
        break
    }
  }
  if (payloadText === undefined) return `entry ${claimed.entry} has no payload field "p"`
  let payload: Message.Json
  let headers: Message.Headers = {}
  try {
    payload = JSON.parse(payloadText)
    if (headersText !== undefined) headers = JSON.parse(headersText)
  } catch {
    return `entry ${claimed.entry} is not JSON`
  }
  const messageId = id ?? claimed.entry
  return {
    queue,
    id: messageId,
    receipt: { provider, queue, messageId, token: { entry: claimed.entry, count: String(claimed.count) } satisfies Token },
    payload,
    headers,
    receiveCount: claimed.count,
    enqueuedAt: new Date(time === undefined ? entryTime(claimed.entry) : Number(time)),
    visibleUntil
  }
}

/** One stream's entries in an XREADGROUP reply: `[id, [field, value, …]]` each. */
export type ReadEntries = ReadonlyArray<readonly [string, ReadonlyArray<string> | null]>

/**
 * The streams of an XREAD / XREADGROUP reply as `[key, entries]` pairs: a Map or
 * an object under RESP3 (node-redis 6's default), pairs under RESP2.
 */
export const streamsOf = (reply: unknown): ReadonlyArray<readonly [string, ReadEntries]> => {
  if (reply instanceof Map) return [...reply.entries()] as Array<[string, ReadEntries]>
  if (Array.isArray(reply)) return reply.map((pair) => [String(pair[0]), pair[1] as ReadEntries] as const)
  return Object.entries(reply as Record<string, ReadEntries>)
}
