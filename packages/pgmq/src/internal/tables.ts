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
}

/** PGMQ ids are bigint identities: decimal text of at most 19 digits. */
export const isMessageId = (id: string) => /^[0-9]{1,19}$/.test(id)

/** A PostgreSQL array literal of ids that passed `isMessageId`, bound as one `bigint[]` parameter. */
export const idArray = (ids: ReadonlyArray<string>) => `{${ids.join(",")}}`

export const toQueued = (queue: QueueName.QueueName, row: Row): Message.QueuedMessage => {
  const id = String(row.msg_id)
  return {
    queue,
    id,
    receipt: { provider, queue, messageId: id, token: row.read_ct },
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
