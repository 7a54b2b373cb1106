/**
 * The installer of the PGMQ-compatible schema, each test in a throw-away
 * database: detection, idempotence, versioning and upgrades. The schema's SQL
 * functions, as other PGMQ clients call them, are tested in
 * `schema-queues.test.ts` and `schema-messages.test.ts`.
 */
import { PgmqInstaller, PgmqNotify, PgmqNotifyConfig, PgmqSchema } from "@conveyor/pgmq"
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
      assert.strictEqual(first.notify?.version, PgmqNotify.version)
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

  it.live("upgrades a version 2 schema in place: queues and messages kept, pgmq's overloads replace the defaults", () =>
    onFreshDatabase(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* installed
      yield* sql`SELECT pgmq.create('kept')`
      yield* sql`SELECT pgmq.send('kept', '{"n":1}'::jsonb)`
      // What version 2 left behind: send and send_batch overloads with DEFAULT delays, where
      // pgmq has separate ones (none taking two arguments).
      yield* sql`DROP FUNCTION pgmq.send(text, jsonb), pgmq.send_batch(text, jsonb[]),
                 pgmq.send(text, jsonb, integer), pgmq.send(text, jsonb, jsonb, integer),
                 pgmq.send_batch(text, jsonb[], integer), pgmq.send_batch(text, jsonb[], jsonb[], integer)`
      for (
        const [signature, call] of [
          ["send(queue_name text, msg jsonb, delay integer DEFAULT 0)", "send(queue_name, msg, NULL::jsonb, clock_timestamp())"],
          ["send(queue_name text, msg jsonb, headers jsonb, delay integer DEFAULT 0)", "send(queue_name, msg, headers, clock_timestamp())"],
          ["send_batch(queue_name text, msgs jsonb[], delay integer DEFAULT 0)", "send_batch(queue_name, msgs, NULL::jsonb[], clock_timestamp())"],
          ["send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer DEFAULT 0)", "send_batch(queue_name, msgs, headers, clock_timestamp())"]
        ]
      ) {
        yield* sql.unsafe(`CREATE FUNCTION pgmq.${signature} RETURNS SETOF bigint LANGUAGE sql AS $fn$ SELECT * FROM pgmq.${call} $fn$`).unprepared
      }
      yield* sql`UPDATE pgmq.conveyor_version SET version = 2 WHERE component = 'schema'`

      const after = yield* installed
      assert.deepStrictEqual(after.flavor, { _tag: "Conveyor", version: PgmqSchema.version })
      const [two] = yield* sql<{ readonly id: bigint }>`SELECT pgmq.send('kept', '{"n":2}'::jsonb) AS id`
      assert.strictEqual(two!.id, 2n, "the two-argument send is not ambiguous")
      const batch = yield* sql<{ readonly id: bigint }>`SELECT * FROM pgmq.send_batch('kept', ARRAY['3']::jsonb[]) AS id`
      assert.deepStrictEqual(batch.map((row) => row.id), [3n])
      const [defaults] = yield* sql<{ readonly n: number }>`
        SELECT count(*)::integer AS n FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace
        WHERE s.nspname = 'pgmq' AND p.proname IN ('send', 'send_batch') AND p.pronargdefaults > 0`
      assert.strictEqual(defaults!.n, 0)
      const messages = yield* sql<{ readonly message: unknown }>`SELECT message FROM pgmq.q_kept ORDER BY msg_id`
      assert.deepStrictEqual(messages.map((row) => row.message), [{ n: 1 }, { n: 2 }, 3])
    })))
})
