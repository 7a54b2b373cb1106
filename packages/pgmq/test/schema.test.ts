/**
 * The PGMQ-compatible schema, tested through its SQL functions directly (as
 * another PGMQ client would call them), in a throw-away database, and the
 * installer's detection, idempotence and versioning.
 */
import { PgmqInstaller, PgmqNotifyConfig, PgmqSchema } from "@conveyor/pgmq"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { freshDatabase, urlFor } from "./support.ts"

const onFreshDatabase = <A, E>(body: Effect.Effect<A, E, SqlClient.SqlClient | PgClient.PgClient>) =>
  Effect.gen(function*() {
    const name = yield* freshDatabase
    return yield* body.pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(urlFor(name)), maxConnections: 3 }).pipe(Layer.orDie))
    )
  })

const installed = Effect.gen(function*() {
  const config = yield* PgmqNotifyConfig.make({})
  return yield* PgmqInstaller.install(config)
})

describe("PGMQ-compatible schema", () => {
  it.live("detects an empty database, installs once, and records versions", () =>
    onFreshDatabase(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      assert.deepStrictEqual((yield* PgmqInstaller.detect).flavor, { _tag: "Absent" })
      const first = yield* installed
      assert.deepStrictEqual(first.flavor, { _tag: "Conveyor", version: PgmqSchema.version })
      assert.strictEqual(first.notify?.version, 1)
      const [before] = yield* sql<{ readonly at: Date }>`
        SELECT installed_at AS at FROM pgmq.conveyor_version WHERE component = 'schema'`
      const second = yield* installed
      assert.deepStrictEqual(second, first)
      const [after] = yield* sql<{ readonly at: Date }>`
        SELECT installed_at AS at FROM pgmq.conveyor_version WHERE component = 'schema'`
      assert.strictEqual(after!.at.getTime(), before!.at.getTime(), "a second install changes nothing")
    })))

  it.live("refuses a database whose schema is newer than this library", () =>
    onFreshDatabase(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* installed
      yield* sql`UPDATE pgmq.conveyor_version SET version = 99 WHERE component = 'schema'`
      const error = yield* Effect.flip(installed)
      assert.strictEqual(error._tag, "InstallConflict")
    })))

  it.live("leaves a pgmq schema it did not install alone, adding only the triggers", () =>
    onFreshDatabase(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SCHEMA pgmq`
      yield* sql`CREATE TABLE pgmq.meta (queue_name varchar UNIQUE NOT NULL, is_partitioned boolean NOT NULL,
                 is_unlogged boolean NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`
      assert.deepStrictEqual((yield* PgmqInstaller.detect).flavor, { _tag: "Foreign" })
      const result = yield* installed
      assert.deepStrictEqual(result.flavor, { _tag: "Foreign" })
      assert.isDefined(result.notify)
      const [send] = yield* sql<{ readonly found: boolean }>`SELECT to_regproc('pgmq.format_table_name') IS NOT NULL AS found`
      assert.isFalse(send!.found, "none of our functions were added to someone else's schema")
    })))

  it.live("the SQL functions behave as PGMQ documents them", () =>
    onFreshDatabase(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* installed
      yield* sql`SELECT pgmq.create('jobs')`
      yield* sql`SELECT pgmq.create('jobs')` // idempotent
      const queues = yield* sql<{ readonly queue_name: string; readonly is_partitioned: boolean }>`
        SELECT queue_name, is_partitioned FROM pgmq.list_queues()`
      assert.deepStrictEqual(queues.map((q) => q.queue_name), ["jobs"])
      assert.isFalse(queues[0]!.is_partitioned)

      // send and its overloads
      const [a] = yield* sql<{ readonly id: bigint }>`SELECT pgmq.send('jobs', '{"n":1}'::jsonb) AS id`
      const [b] = yield* sql<{ readonly id: bigint }>`
        SELECT pgmq.send('jobs', '{"n":2}'::jsonb, '{"h":"x"}'::jsonb) AS id`
      const [c] = yield* sql<{ readonly id: bigint }>`SELECT pgmq.send('jobs', '{"n":3}'::jsonb, 3600) AS id`
      const [d] = yield* sql<{ readonly id: bigint }>`
        SELECT pgmq.send('jobs', '{"n":4}'::jsonb, now() + interval '1 hour') AS id`
      const [e] = yield* sql<{ readonly id: bigint }>`
        SELECT pgmq.send(queue_name => 'jobs', msg => '{"n":5}'::jsonb, headers => '{"k":"v"}'::jsonb, delay => 0) AS id`
      assert.deepStrictEqual([a!.id, b!.id, c!.id, d!.id, e!.id], [1n, 2n, 3n, 4n, 5n])
      const batch = yield* sql<{ readonly id: bigint }>`
        SELECT * FROM pgmq.send_batch('jobs', ARRAY['{"n":6}', '{"n":7}']::jsonb[], ARRAY['{"i":"6"}', '{"i":"7"}']::jsonb[]) AS id`
      assert.deepStrictEqual(batch.map((row) => row.id), [6n, 7n])
      const badHeaders = yield* Effect.flip(
        sql`SELECT * FROM pgmq.send_batch('jobs', ARRAY['{}', '{}']::jsonb[], ARRAY['{}']::jsonb[])`
      )
      assert.strictEqual(badHeaders._tag, "SqlError")

      // read claims visible messages in order, skipping the delayed ones, and bumps read_ct
      const read = yield* sql<{
        readonly msg_id: bigint
        readonly read_ct: number
        readonly message: { readonly n: number }
        readonly headers: unknown
        readonly last_read_at: Date | null
      }>`SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM pgmq.read('jobs', 30, 10)`
      assert.deepStrictEqual(read.map((row) => row.msg_id), [1n, 2n, 5n, 6n, 7n])
      assert.deepStrictEqual(read.map((row) => row.read_ct), [1, 1, 1, 1, 1])
      assert.deepStrictEqual(read[1]!.headers, { h: "x" })
      assert.deepStrictEqual(read[3]!.headers, { i: "6" })
      assert.isNotNull(read[0]!.last_read_at)
      assert.lengthOf(yield* sql`SELECT msg_id FROM pgmq.read('jobs', 30, 10)`, 0, "claimed messages are invisible")

      // conditional read
      yield* sql`SELECT msg_id FROM pgmq.set_vt('jobs', 1, 0)`
      yield* sql`SELECT msg_id FROM pgmq.set_vt('jobs', 2, 0)`
      const conditional = yield* sql<{ readonly msg_id: bigint }>`
        SELECT msg_id FROM pgmq.read('jobs', 30, 10, '{"n":2}'::jsonb)`
      assert.deepStrictEqual(conditional.map((row) => row.msg_id), [2n])

      // set_vt returns the row with its new vt
      const [moved] = yield* sql<{ readonly vt: Date }>`SELECT vt FROM pgmq.set_vt('jobs', 5, 120)`
      assert.isAbove(moved!.vt.getTime(), Date.now() + 100_000)

      // pop deletes and returns the first visible message
      const popped = yield* sql<{ readonly msg_id: bigint }>`SELECT msg_id FROM pgmq.pop('jobs')`
      assert.deepStrictEqual(popped.map((row) => row.msg_id), [1n])

      // archive and delete, single and array forms
      const [archived] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.archive('jobs', 2::bigint) AS ok`
      assert.isTrue(archived!.ok)
      const [missing] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.archive('jobs', 999::bigint) AS ok`
      assert.isFalse(missing!.ok)
      const archivedMany = yield* sql<{ readonly id: bigint }>`
        SELECT * FROM pgmq.archive('jobs', ARRAY[6, 7]::bigint[]) AS id`
      assert.deepStrictEqual(archivedMany.map((row) => row.id).sort(), [6n, 7n])
      const archive = yield* sql<{ readonly msg_id: bigint; readonly archived_at: Date }>`
        SELECT msg_id, archived_at FROM pgmq.a_jobs ORDER BY msg_id`
      assert.deepStrictEqual(archive.map((row) => row.msg_id), [2n, 6n, 7n])
      const [deleted] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.delete('jobs', 3::bigint) AS ok`
      assert.isTrue(deleted!.ok)
      const deletedMany = yield* sql<{ readonly id: bigint }>`
        SELECT * FROM pgmq.delete('jobs', ARRAY[4, 999]::bigint[]) AS id`
      assert.deepStrictEqual(deletedMany.map((row) => row.id), [4n])

      // metrics: depth, visible, totals
      const [metrics] = yield* sql<{
        readonly queue_name: string
        readonly queue_length: bigint
        readonly total_messages: bigint
        readonly queue_visible_length: bigint
      }>`SELECT queue_name, queue_length, newest_msg_age_sec, oldest_msg_age_sec, total_messages, scrape_time,
                queue_visible_length FROM pgmq.metrics('jobs')`
      assert.strictEqual(metrics!.queue_name, "jobs")
      assert.strictEqual(metrics!.queue_length, 1n) // only 5 is left, invisible for 120 s
      assert.strictEqual(metrics!.queue_visible_length, 0n)
      assert.strictEqual(metrics!.total_messages, 7n)
      yield* sql`SELECT pgmq.create('other')`
      const all = yield* sql<{ readonly queue_name: string }>`SELECT queue_name FROM pgmq.metrics_all()`
      assert.deepStrictEqual(all.map((row) => row.queue_name), ["jobs", "other"])

      // purge counts, drop removes tables and meta
      const [purged] = yield* sql<{ readonly n: bigint }>`SELECT pgmq.purge_queue('jobs') AS n`
      assert.strictEqual(purged!.n, 1n)
      const [dropped] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue('jobs') AS ok`
      assert.isTrue(dropped!.ok)
      const [again] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue('jobs') AS ok`
      assert.isFalse(again!.ok)
      const [gone] = yield* sql<{ readonly found: boolean }>`SELECT to_regclass('pgmq.q_jobs') IS NOT NULL AS found`
      assert.isFalse(gone!.found)
    })))

  it.live("queue names carrying SQL are refused by the SQL functions too", () =>
    onFreshDatabase(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* installed
      for (const name of ["x'; drop table pgmq.meta; --", "\"x\"", "x.y", "", "a".repeat(52)]) {
        const error = yield* Effect.flip(sql`SELECT pgmq.create(${name}::text)`)
        assert.strictEqual(error._tag, "SqlError", name)
      }
      const [meta] = yield* sql<{ readonly found: boolean }>`SELECT to_regclass('pgmq.meta') IS NOT NULL AS found`
      assert.isTrue(meta!.found)
      const tables = yield* sql<{ readonly n: number }>`
        SELECT count(*)::integer AS n FROM pg_tables WHERE schemaname = 'pgmq' AND tablename LIKE 'q\\_%'`
      assert.strictEqual(tables[0]!.n, 0)
    })))
})
