/**
 * Sends. Concurrent `send`s to one queue are one `INSERT` (so also one
 * notification) per distinct delay; each caller gets its own id, in the
 * order of the batch. A lone send is a batch of one: one row, announced
 * with its payload inline, as before.
 */
import { Batching, Durations, type Message, type Messaging, Payload, type QueueName } from "@conveyor/core"
import { type Array as Arr, Effect, Exit } from "effect"
import * as Coalesce from "./coalesce.ts"
import { fromSqlOn } from "./errors.ts"
import { byId, type Tables } from "./tables.ts"

interface Outgoing {
  readonly queue: QueueName.QueueName
  /** The encoded payload (JSON text). */
  readonly body: string
  readonly headers: Message.Headers | undefined
  readonly delayMs: number
}

/**
 * One JSON array of `{ m: message, h?: headers }`, bound as a single parameter.
 * `body` is JSON already; headers absent stay SQL NULL, as PGMQ's `send` leaves them.
 */
const wire = (items: ReadonlyArray<Outgoing>) =>
  `[${
    items.map((item) => item.headers === undefined ? `{"m":${item.body}}` : `{"m":${item.body},"h":${JSON.stringify(item.headers)}}`)
      .join(",")
  }]`

export const make = ({ sql, table, vtFrom }: Tables, maxBytes: number) =>
  Effect.gen(function*() {
    // Identity values follow insertion order, which follows the input.
    const insert = (queue: QueueName.QueueName, delayMs: number, items: ReadonlyArray<Outgoing>) =>
      sql<{ readonly msg_id: bigint }>`
        INSERT INTO pgmq.${table(queue)} (vt, message, headers)
        SELECT ${vtFrom(delayMs)}, m.value->'m', m.value->'h'
        FROM jsonb_array_elements(${wire(items)}::jsonb) WITH ORDINALITY AS m(value, ord)
        ORDER BY m.ord
        RETURNING msg_id`.pipe(
        Effect.map((rows) => [...rows].sort(byId).map((row) => String(row.msg_id))),
        Effect.mapError(fromSqlOn("send", queue))
      )

    const sendOne = yield* Coalesce.make(sql, {
      key: (item: Outgoing) => item.queue,
      // Rows of one statement are announced with one ready time: only equal delays share one.
      run: (items: Arr.NonEmptyReadonlyArray<Outgoing>) =>
        Batching.perGroup(items, (item) => item.delayMs, (group) =>
          Effect.map(insert(group[0].queue, group[0].delayMs, group), (ids) => ids.map((id) => Exit.succeed(id))))
    })

    const send = (queue: QueueName.QueueName, payload: Message.Json, options?: Messaging.SendOptions) =>
      Effect.flatMap(Payload.encode(queue, payload, maxBytes), (body) =>
        sendOne({ queue, body, headers: options?.headers, delayMs: Durations.millis(options?.delay) }))

    const sendBatch = (
      queue: QueueName.QueueName,
      payloads: ReadonlyArray<Message.Json>,
      options?: Messaging.SendOptions
    ) =>
      Effect.gen(function*() {
        if (payloads.length === 0) return []
        const bodies = yield* Effect.forEach(payloads, (payload) => Payload.encode(queue, payload, maxBytes))
        const delayMs = Durations.millis(options?.delay)
        // One statement: one round trip, and one batch_ready notification.
        return yield* insert(queue, delayMs, bodies.map((body) => ({ queue, body, headers: options?.headers, delayMs })))
      })

    return { send, sendBatch }
  })
