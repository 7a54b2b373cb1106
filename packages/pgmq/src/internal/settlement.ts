/**
 * Settling deliveries: ack (archive or delete), nack (new `vt`, or a move to
 * the dead-letter queue) and visibility extension. Each touches a row only
 * while the receipt's claim is current — its `read_ct`, and its `last_read_at`
 * (a claim undone by a server crash is followed by one with the same
 * `read_ct`: claims do not wait for their flush, DESIGN §5) — and its `vt` has
 * not passed, else `StaleReceipt`: a stale receipt never settles another
 * consumer's claim.
 *
 * Concurrent settlements of one kind on one queue are one statement over
 * all their receipts (`unnest` of ids, read counts and claim times); each receipt is
 * still checked on its own, and a stale one fails only its own caller.
 */
import { Batching, Durations, type Message, type MessagingError, type Messaging, type QueueName, Receipts } from "@conveyor/core"
import { type Array as Arr, type Duration, Effect, Exit } from "effect"
import * as Coalesce from "./coalesce.ts"
import { fromSqlOn, provider } from "./errors.ts"
import type { Queues } from "./queues.ts"
import { type Claim, claimedUsOf, idArray, isMessageId, type Tables } from "./tables.ts"

interface Held {
  readonly receipt: Message.Receipt
  readonly queue: QueueName.QueueName
  readonly id: string
  readonly readCt: number
  readonly claimedUs: string
}

interface Timed extends Held {
  readonly operation: "nack" | "extend_visibility"
  readonly ms: number
}

type Failure = MessagingError.MessagingError

export interface Options {
  /** What `ack` does with the message: `archive` moves it to `pgmq.a_<name>`. */
  readonly ackMode: "archive" | "delete"
}

/** A token as claims write it (its parts enter SQL as array literals: digits only). */
const isClaim = (token: unknown): token is Claim =>
  typeof token === "object" && token !== null && "readCt" in token && "claimedUs" in token &&
  Number.isSafeInteger(token.readCt) && typeof token.claimedUs === "string" && isMessageId(token.claimedUs)

const isOurs = (receipt: Message.Receipt): receipt is Message.Receipt & { readonly token: Claim } =>
  receipt.provider === provider && isClaim(receipt.token) && isMessageId(receipt.messageId)

const heldOf = (receipt: Message.Receipt & { readonly token: Claim }): Held => ({
  receipt,
  queue: receipt.queue,
  id: receipt.messageId,
  readCt: receipt.token.readCt,
  claimedUs: receipt.token.claimedUs
})

/** The claim a receipt proves, or a ProviderError for a receipt that is not ours. */
const heldBy = (receipt: Message.Receipt, operation: string): Effect.Effect<Held, MessagingError.ProviderError> =>
  isOurs(receipt) ? Effect.succeed(heldOf(receipt)) : Effect.fail(Receipts.foreign(receipt, provider, operation))

interface Settled {
  readonly msg_id: bigint
  readonly read_ct: number
  readonly claimed_us: bigint
}

/**
 * One result per item: settled when its claim came back, once: a receipt given twice is stale
 * the second time, and an older claim of the same message stays stale.
 */
const settledAmong = (items: ReadonlyArray<Held>) => (rows: ReadonlyArray<Settled>) => {
  const settled = new Set(rows.map((row) => `${row.msg_id}:${row.read_ct}:${row.claimed_us}`))
  return items.map((item) =>
    settled.delete(`${item.id}:${item.readCt}:${item.claimedUs}`)
      ? Exit.void
      : Exit.fail<Failure>(Receipts.stale(item.receipt))
  )
}

export const make = ({ archive, sql, table }: Tables, queues: Queues, options: Options) =>
  Effect.gen(function*() {
    const receipts = (items: Arr.NonEmptyReadonlyArray<Held>) =>
      sql`SELECT * FROM unnest(${idArray(items.map((item) => item.id))}::bigint[],
                               ${idArray(items.map((item) => String(item.readCt)))}::integer[],
                               ${idArray(items.map((item) => item.claimedUs))}::bigint[]) AS r(msg_id, read_ct, claimed_us)`
    /** Row `m` is still the claim `r` proves, and the claim has not expired. */
    const holds = sql.literal(
      `m.msg_id = r.msg_id AND m.read_ct = r.read_ct AND ${claimedUsOf("m")} = r.claimed_us AND m.vt > clock_timestamp()`
    )
    const settledClaim = sql.literal(`m.msg_id, m.read_ct, ${claimedUsOf("m")} AS claimed_us`)

    const acks = (items: Arr.NonEmptyReadonlyArray<Held>) => {
      const queue = items[0].queue
      const statement = options.ackMode === "delete"
        ? sql<Settled>`
            DELETE FROM pgmq.${table(queue)} m USING (${receipts(items)}) r
            WHERE ${holds}
            RETURNING ${settledClaim}`
        : sql<Settled>`
            WITH done AS (
              DELETE FROM pgmq.${table(queue)} m USING (${receipts(items)}) r
              WHERE ${holds}
              RETURNING ${settledClaim}, m.enqueued_at, m.vt, m.message, m.headers),
            archived AS (
              INSERT INTO pgmq.${archive(queue)} (msg_id, read_ct, enqueued_at, vt, message, headers)
              SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM done)
            SELECT msg_id, read_ct, claimed_us FROM done`
      return statement.pipe(Effect.map(settledAmong(items)), Effect.mapError(fromSqlOn("ack", queue)))
    }

    // One statement: each message is in exactly one of the two queues, whatever happens.
    const deadLetters = (items: Arr.NonEmptyReadonlyArray<Held>) => {
      const queue = items[0].queue
      return Effect.flatMap(queues.ensureDeadLetterQueue(queue), (dlq) =>
        sql<Settled>`
          WITH moved AS (
            DELETE FROM pgmq.${table(queue)} m USING (${receipts(items)}) r
            WHERE ${holds}
            RETURNING ${settledClaim}, m.message, m.headers),
          dead AS (
            INSERT INTO pgmq.${table(dlq)} (vt, message, headers)
            SELECT clock_timestamp(), message, headers FROM moved ORDER BY msg_id)
          SELECT msg_id, read_ct, claimed_us FROM moved`.pipe(
          Effect.map(settledAmong(items)),
          Effect.mapError(fromSqlOn("nack", queue))
        ))
    }

    const newVisibilities = (items: Arr.NonEmptyReadonlyArray<Timed>) => {
      const { operation, queue } = items[0]
      return sql<Settled>`
        UPDATE pgmq.${table(queue)} m SET vt = clock_timestamp() + r.ms * interval '1 millisecond'
        FROM unnest(${idArray(items.map((item) => item.id))}::bigint[],
                    ${idArray(items.map((item) => String(item.readCt)))}::integer[],
                    ${idArray(items.map((item) => item.claimedUs))}::bigint[],
                    ${idArray(items.map((item) => String(item.ms)))}::float8[]) AS r(msg_id, read_ct, claimed_us, ms)
        WHERE ${holds}
        RETURNING ${settledClaim}`.pipe(Effect.map(settledAmong(items)), Effect.mapError(fromSqlOn(operation, queue)))
    }

    const ackOne = yield* Coalesce.make(sql, { key: (item: Held) => item.queue, run: acks })
    const deadLetterOne = yield* Coalesce.make(sql, { key: (item: Held) => item.queue, run: deadLetters })
    const setVisibility = yield* Coalesce.make(sql, {
      key: (item: Timed) => `${item.operation}:${item.queue}`,
      run: newVisibilities
    })

    const ack = (receipt: Message.Receipt) => Effect.flatMap(heldBy(receipt, "ack"), ackOne)

    // Already gathered (`Messaging.ackAll`): one statement per queue, inside a caller's
    // transaction too (it then runs on the transaction's connection, with its writes).
    const ackGathered = Batching.all({ key: (item: Held) => item.queue, run: acks })
    const ackAll = (receipts: ReadonlyArray<Message.Receipt>): Effect.Effect<ReadonlyArray<Exit.Exit<void, Failure>>> =>
      Receipts.refusing(
        receipts,
        (receipt) => isOurs(receipt) ? undefined : Receipts.foreign(receipt, provider, "ack"),
        (ours) => ackGathered(ours.map((receipt) => heldOf(receipt as Message.Receipt & { readonly token: Claim })))
      )

    const nack = (receipt: Message.Receipt, options: Messaging.NackOptions = {}) =>
      Effect.flatMap(heldBy(receipt, "nack"), (held) =>
        options.requeue === false
          ? deadLetterOne(held)
          : setVisibility({ ...held, operation: "nack", ms: Durations.millis(options.delay) }))

    const extendVisibility = (receipt: Message.Receipt, duration: Duration.Input) =>
      Effect.flatMap(heldBy(receipt, "extend_visibility"), (held) =>
        setVisibility({ ...held, operation: "extend_visibility", ms: Durations.millis(duration) }))

    return { ack, ackAll, nack, extendVisibility }
  })
