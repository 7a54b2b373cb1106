/**
 * The SQL every operation shares: the queue and archive tables of a queue,
 * visibility times computed on the server's clock, and rows as messages.
 * Queue names reaching here are validated `QueueName`s; they enter SQL only
 * as quoted identifiers, values only as bound parameters.
 */
import { Message, type QueueName } from "@conveyor/core"
import type { PgClient } from "@effect/sql-pg"
import { provider } from "./errors.ts"

/** The columns a claim returns (named, never `*`). */
export interface Row {
  readonly msg_id: bigint
  readonly read_ct: number
  readonly enqueued_at: Date
  readonly vt: Date
  readonly message: unknown
  readonly headers: unknown
  /** The claim's `last_read_at` in epoch microseconds. */
  readonly claimed_us: bigint
}

/**
 * A receipt's token: the claim's `read_ct` and when it was made (`last_read_at`, epoch
 * microseconds as decimal text). A claim undone by a server crash (DESIGN §5, claims do not wait
 * for their flush) is followed by one with the same `read_ct` but a later time, so the undone
 * claim's receipt is stale for it.
 */
export interface Claim {
  readonly readCt: number
  readonly claimedUs: string
}

/** PGMQ ids are bigint identities: decimal text of at most 19 digits. */
export const isMessageId = (id: string) => /^[0-9]{1,19}$/.test(id)

/** `last_read_at` in epoch microseconds, exact (PostgreSQL 14+ extracts a numeric). */
export const claimedUsOf = (alias: string) => `(extract(epoch FROM ${alias}.last_read_at) * 1000000)::bigint`

/** A PostgreSQL array literal of ids that passed `isMessageId`, bound as one `bigint[]` parameter. */
export const idArray = (ids: ReadonlyArray<string>) => `{${ids.join(",")}}`

export const toQueued = (queue: QueueName.QueueName, row: Row): Message.QueuedMessage => {
  const id = String(row.msg_id)
  return {
    queue,
    id,
    receipt: { provider, queue, messageId: id, token: { readCt: row.read_ct, claimedUs: String(row.claimed_us) } satisfies Claim },
    payload: row.message as Message.Json,
    headers: Message.headersFrom(row.headers),
    receiveCount: row.read_ct,
    enqueuedAt: row.enqueued_at,
    visibleUntil: row.vt
  }
}

export const byId = (a: { readonly msg_id: bigint }, b: { readonly msg_id: bigint }) =>
  a.msg_id < b.msg_id ? -1 : a.msg_id > b.msg_id ? 1 : 0

export const make = (sql: PgClient.PgClient) => ({
  sql,
  table: (queue: QueueName.QueueName) => sql(`q_${queue}`),
  archive: (queue: QueueName.QueueName) => sql(`a_${queue}`),
  /** `ms` from now on the server's clock, as PGMQ's `vt` is. */
  vtFrom: (ms: number) => sql`clock_timestamp() + ${ms}::float8 * interval '1 millisecond'`
})

export type Tables = ReturnType<typeof make>
