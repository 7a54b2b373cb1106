/**
 * Claims, as PGMQ's `read` makes them: visible rows, `FOR UPDATE SKIP
 * LOCKED`, `read_ct + 1`, a new `vt` (in milliseconds) and `last_read_at`.
 * Claims by id of one queue made at the same time (concurrent fetches) are
 * one statement per visibility timeout, and so are concurrent receives (a
 * consumer draining with several claims in flight): one claim of all they
 * ask, dealt out in id order; a subscription claims the ids it heard of
 * together in one statement itself (`claimMany`).
 *
 * Claims are uninterruptible: one interrupted after the UPDATE reached the
 * server would hold its messages, unrecorded, for a whole visibility timeout.
 *
 * A claim commits without waiting for its WAL flush (`synchronous_commit`
 * off for that statement's own transaction only): a claim lost in a
 * PostgreSQL crash leaves its messages visible again, to be delivered once
 * more, and each flush (every send and settle waits for one) makes the claims
 * before it durable. Inside the caller's `sql.withTransaction` a claim is an
 * ordinary statement of that transaction: its durability is the caller's.
 * DESIGN §5 weighs this.
 */
import { Batching, Durations, type Message, type Messaging, type QueueName } from "@conveyor/core"
import { type Array as Arr, Effect, Exit, Option } from "effect"
import * as Coalesce from "./coalesce.ts"
import { fromSqlOn } from "./errors.ts"
import { byId, claimedUsOf, idArray, isMessageId, type Row, type Tables, toQueued } from "./tables.ts"

interface Receive {
  readonly queue: QueueName.QueueName
  readonly max: number
  readonly visibilityMs: number
}

interface ById {
  readonly queue: QueueName.QueueName
  readonly id: string
  readonly visibilityMs: number
}

export const make = ({ sql, table, vtFrom }: Tables) =>
  Effect.gen(function*() {
    const claimed = sql.literal(
      `m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers, ${claimedUsOf("m")} AS claimed_us`
    )
    // A condition on the claim's rows that is always true and, evaluated once before the first
    // row is taken, turns the flush off for the statement's own (implicit) transaction.
    const noFlush = sql`AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'`
    /** The claim's condition on durability: none inside the caller's transaction. */
    const flushing = Effect.map(
      Effect.serviceOption(sql.transactionService),
      Option.match({ onNone: () => noFlush, onSome: () => sql`` })
    )

    /** One statement claiming up to `max` visible rows of `queue`, in id order. */
    const claimVisible = (queue: QueueName.QueueName, max: number, visibilityMs: number) =>
      Effect.flatMap(flushing, (durability) => sql<Row>`
        WITH cte AS (
          SELECT msg_id FROM pgmq.${table(queue)}
          WHERE vt <= clock_timestamp() ${durability}
          ORDER BY msg_id LIMIT ${max}::integer
          FOR UPDATE SKIP LOCKED)
        UPDATE pgmq.${table(queue)} m
        SET vt = ${vtFrom(visibilityMs)}, read_ct = m.read_ct + 1,
            last_read_at = clock_timestamp()
        FROM cte WHERE m.msg_id = cte.msg_id
        RETURNING ${claimed}`).pipe(
        Effect.map((rows) => [...rows].sort(byId).map((row) => toQueued(queue, row))),
        Effect.mapError(fromSqlOn("receive", queue))
      )

    /** Concurrent receives of one queue and timeout: one claim of all they ask, dealt out in order. */
    const claimBatches = (items: Arr.NonEmptyReadonlyArray<Receive>) =>
      Effect.map(
        claimVisible(items[0].queue, items.reduce((sum, item) => sum + item.max, 0), items[0].visibilityMs),
        (messages) => {
          let at = 0
          // The first callers get full batches: one that comes back short knows the queue is drained.
          return items.map((item) => Exit.succeed(messages.slice(at, at += item.max)))
        }
      )

    const receiveOne = yield* Coalesce.make(sql, {
      key: (item: Receive) => item.queue,
      run: (items: Arr.NonEmptyReadonlyArray<Receive>) => Batching.perGroup(items, (item) => item.visibilityMs, claimBatches)
    })

    const receive = (queue: QueueName.QueueName, options: Messaging.ReceiveOptions) =>
      Effect.uninterruptible(receiveOne({
        queue,
        max: Math.max(1, Math.floor(options.max ?? 1)),
        visibilityMs: Durations.millis(options.visibilityTimeout)
      }))

    /**
     * Which rows: one id is compared as a scalar. With an array parameter PostgreSQL plans the
     * prepared statement anew on every execution (its generic plan looks dearer), which cost a
     * lone claim 0.08 of its 0.26 ms.
     */
    const idsAre = (ids: ReadonlyArray<string>) => {
      const unique = [...new Set(ids)]
      return unique.length === 1 ? sql`msg_id = ${unique[0]!}::bigint` : sql`msg_id = ANY(${idArray(unique)}::bigint[])`
    }

    /** One statement for `ids` (valid message ids) of one queue: what each claimed, in order. */
    const claimRows = (queue: QueueName.QueueName, ids: ReadonlyArray<string>, visibilityMs: number) =>
      Effect.flatMap(flushing, (durability) => sql<Row>`
        WITH cte AS (
          SELECT msg_id FROM pgmq.${table(queue)}
          WHERE ${idsAre(ids)} AND vt <= clock_timestamp() ${durability}
          ORDER BY msg_id
          FOR UPDATE SKIP LOCKED)
        UPDATE pgmq.${table(queue)} m
        SET vt = ${vtFrom(visibilityMs)}, read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
        FROM cte WHERE m.msg_id = cte.msg_id
        RETURNING ${claimed}`).pipe(
        Effect.map((rows) => {
          const found = new Map(rows.map((row) => [String(row.msg_id), row]))
          // An id asked for twice is claimed once: the first asker holds it.
          return ids.map((id) => {
            const row = found.get(id)
            found.delete(id)
            return Option.map(Option.fromNullishOr(row), (r) => toQueued(queue, r))
          })
        }),
        Effect.mapError(fromSqlOn("receive", queue))
      )

    const claimIds = (items: Arr.NonEmptyReadonlyArray<ById>) =>
      Effect.map(
        claimRows(items[0].queue, items.map((item) => item.id), items[0].visibilityMs),
        (claimed) => claimed.map((message) => Exit.succeed(message))
      )

    const claimById = yield* Coalesce.make(sql, {
      key: (item: ById) => item.queue,
      run: (items: Arr.NonEmptyReadonlyArray<ById>) => Batching.perGroup(items, (item) => item.visibilityMs, claimIds)
    })

    /** Claims one message by id if it is visible now. */
    const claim = (queue: QueueName.QueueName, id: string, visibilityMs: number) =>
      isMessageId(id)
        ? Effect.uninterruptible(claimById({ queue, id, visibilityMs }))
        : Effect.succeed(Option.none<Message.QueuedMessage>())

    /**
     * Claims `ids` of one queue that are visible now, in one statement (not coalesced: the
     * caller already holds them together): one `Option` per id, in order.
     */
    const claimMany = (queue: QueueName.QueueName, ids: ReadonlyArray<string>, visibilityMs: number) => {
      const valid = ids.filter(isMessageId)
      if (valid.length === 0) return Effect.succeed(ids.map(() => Option.none<Message.QueuedMessage>()))
      return Effect.uninterruptible(Effect.map(claimRows(queue, valid, visibilityMs), (claimed) => {
        let at = 0
        return ids.map((id) => isMessageId(id) ? claimed[at++]! : Option.none<Message.QueuedMessage>())
      }))
    }

    const fetch = (queue: QueueName.QueueName, id: Message.MessageId, options: Messaging.FetchOptions) =>
      claim(queue, id, Durations.millis(options.visibilityTimeout))

    return { receive, claimMany, fetch }
  })
