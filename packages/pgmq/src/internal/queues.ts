/**
 * Queue DDL and queue listing. A Conveyor queue is two PGMQ queues, `<q>`
 * and its dead-letter queue `<q>_dlq`: both are created, or dropped, in one
 * transaction, so a failure leaves neither behind.
 */
import { QueueName } from "@conveyor/core"
import { Effect } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import * as Installer from "../PgmqInstaller.ts"
import { fromSql, fromSqlOn } from "./errors.ts"
import type { Tables } from "./tables.ts"

export const make = ({ sql, table }: Tables) => {
  // Creating and dropping queues in several sessions at once, or while another instance
  // (re)installs the notify function, deadlocks in PostgreSQL (tables, pgmq.meta, the
  // function and the triggers attached on creation lock in different orders), so queue DDL
  // takes the installer's transaction-level advisory lock: it is rare, never hot.
  const ddl = <A>(statement: Effect.Effect<A, SqlError>) =>
    sql.withTransaction(
      Effect.andThen(sql`SELECT pg_advisory_xact_lock(${Installer.lockKey}::integer)`, statement)
    )

  const create = (name: string) => sql`SELECT pgmq."create"(${name}::text)`

  const ensureQueue = (queue: QueueName.QueueName) =>
    ddl(Effect.andThen(create(queue), create(QueueName.deadLetter(queue)))).pipe(
      // The extension's create is not guarded against a concurrent create of the same queue.
      Effect.retry({ times: 1, while: (error: SqlError) => error.reason._tag === "UniqueViolation" }),
      Effect.mapError(fromSqlOn("create", queue))
    )

  const deleteQueue = (queue: QueueName.QueueName) =>
    ddl(Effect.andThen(
      sql`SELECT pgmq.drop_queue(${queue}::text)`,
      sql`SELECT pgmq.drop_queue(${QueueName.deadLetter(queue)}::text)`
    )).pipe(Effect.mapError(fromSqlOn("delete_queue", queue)))

  const queueExists = (queue: QueueName.QueueName) =>
    sql<{ readonly found: boolean }>`
      SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = ${queue}::text) AS found`.pipe(
      Effect.map((rows) => rows[0]?.found === true),
      Effect.mapError(fromSqlOn("queue_exists", queue))
    )

  /** Which of `names` are queues now: one statement however many (names are validated, so the array literal needs no quoting). */
  const existing = (names: ReadonlyArray<QueueName.QueueName>) =>
    sql<{ readonly queue_name: string }>`
      SELECT queue_name FROM pgmq.meta WHERE queue_name = ANY(${`{${names.join(",")}}`}::text[])`.pipe(
      Effect.map((rows) => new Set(rows.map((row) => row.queue_name))),
      Effect.mapError(fromSql("queue_exists"))
    )

  const listQueues = sql<{ readonly queue_name: string }>`
    SELECT queue_name FROM pgmq.meta ORDER BY queue_name`.pipe(
    // Queues other clients created under names we refuse are not ours to touch.
    Effect.map((rows) => rows.map((row) => row.queue_name).filter(QueueName.is)),
    Effect.mapError(fromSql("list_queues"))
  )

  const purgeQueue = (queue: QueueName.QueueName) =>
    sql<{ readonly purged: bigint }>`SELECT pgmq.purge_queue(${queue}::text) AS purged`.pipe(
      Effect.map((rows) => Number(rows[0]?.purged ?? 0)),
      Effect.mapError(fromSqlOn("purge", queue))
    )

  /** Whether the queue's table exists (PGMQ's tables may exist without us having made them). */
  const tableExists = (queue: QueueName.QueueName) =>
    Effect.map(
      sql<{ readonly found: boolean }>`SELECT to_regclass(${`pgmq.q_${queue}`}::text) IS NOT NULL AS found`,
      (rows) => rows[0]?.found === true
    )

  /** Dead-letter queues of queues other clients created may be missing: created on first use. */
  const knownDeadLetterQueues = new Set<string>()
  const ensureDeadLetterQueue = (queue: QueueName.QueueName) =>
    Effect.gen(function*() {
      const dlq = QueueName.deadLetter(queue)
      if (knownDeadLetterQueues.has(dlq)) return dlq
      if (!(yield* tableExists(dlq))) yield* ddl(create(dlq))
      knownDeadLetterQueues.add(dlq)
      return dlq
    }).pipe(Effect.mapError(fromSqlOn("nack", queue)))

  /** Messages in the dead-letter queue of `queue`, when it has one. */
  const deadLettered = (queue: QueueName.QueueName) =>
    Effect.gen(function*() {
      const dlq = QueueName.deadLetter(queue)
      if (!(yield* tableExists(dlq))) return undefined
      const [row] = yield* sql<{ readonly count: number }>`SELECT count(*)::integer AS count FROM pgmq.${table(dlq)}`
      return row?.count
    })

  return { ensureQueue, deleteQueue, queueExists, existing, listQueues, purgeQueue, ensureDeadLetterQueue, deadLettered }
}

export type Queues = ReturnType<typeof make>
