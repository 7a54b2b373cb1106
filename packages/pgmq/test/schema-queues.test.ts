/**
 * The PGMQ-compatible schema against pgmq 1.11, queue by queue: the core
 * API's signatures as `pg_proc` records them, then create, drop_queue (both
 * forms), purge_queue, list_queues, metrics and metrics_all, and the names
 * pgmq accepts and refuses, with its fixed error texts. Expected values come
 * from pgmq's `pgmq-extension/sql/pgmq.sql` and its regression script
 * `test/sql/base.sql` with `test/expected/base.out`.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { failureOf, fresh, installedDatabase } from "./schema-support.ts"

/** pgmq 1.11's core API: name(arguments, with defaults) → result. */
const upstream = [
  "archive(queue_name text, msg_id bigint) → boolean",
  "archive(queue_name text, msg_ids bigint[]) → SETOF bigint",
  "create(queue_name text) → void",
  "delete(queue_name text, msg_id bigint) → boolean",
  "delete(queue_name text, msg_ids bigint[]) → SETOF bigint",
  "drop_queue(queue_name text) → boolean",
  "drop_queue(queue_name text, partitioned boolean) → boolean",
  "format_table_name(queue_name text, prefix text) → text",
  "list_queues() → SETOF pgmq.queue_record",
  "metrics(queue_name text) → pgmq.metrics_result",
  "metrics_all() → SETOF pgmq.metrics_result",
  "pop(queue_name text, qty integer DEFAULT 1) → SETOF pgmq.message_record",
  "purge_queue(queue_name text) → bigint",
  "read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}'::jsonb) → SETOF pgmq.message_record",
  "send(queue_name text, msg jsonb) → SETOF bigint",
  "send(queue_name text, msg jsonb, delay integer) → SETOF bigint",
  "send(queue_name text, msg jsonb, delay timestamp with time zone) → SETOF bigint",
  "send(queue_name text, msg jsonb, headers jsonb) → SETOF bigint",
  "send(queue_name text, msg jsonb, headers jsonb, delay integer) → SETOF bigint",
  "send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone) → SETOF bigint",
  "send_batch(queue_name text, msgs jsonb[]) → SETOF bigint",
  "send_batch(queue_name text, msgs jsonb[], delay integer) → SETOF bigint",
  "send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone) → SETOF bigint",
  "send_batch(queue_name text, msgs jsonb[], headers jsonb[]) → SETOF bigint",
  "send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) → SETOF bigint",
  "send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone) → SETOF bigint",
  "set_vt(queue_name text, msg_id bigint, vt integer) → SETOF pgmq.message_record",
  "set_vt(queue_name text, msg_id bigint, vt timestamp with time zone) → SETOF pgmq.message_record",
  "set_vt(queue_name text, msg_ids bigint[], vt integer) → SETOF pgmq.message_record",
  "set_vt(queue_name text, msg_ids bigint[], vt timestamp with time zone) → SETOF pgmq.message_record",
  "validate_queue_name(queue_name text) → void"
]

const invalidCharacters = "queue name contains invalid characters: $, ;, --, or \\'"
const tooLong = "queue name is too long, maximum length is 47 characters"

layer(installedDatabase, { excludeTestServices: true, timeout: "60 seconds" })("PGMQ-compatible schema: queues", (it) => {
  it.effect("has every core-API function of pgmq 1.11 with its signature, and no other overload", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const names = [...new Set(upstream.map((line) => line.slice(0, line.indexOf("("))))]
      const rows = yield* sql<{ readonly signature: string }>`
        SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') → ' || pg_get_function_result(p.oid) AS signature
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'pgmq' AND p.proname IN ${sql.in(names)}`
      assert.deepStrictEqual(rows.map((row) => row.signature).sort(), [...upstream].sort())
    }))

  it.effect("create: idempotent, both tables and both indexes, meta last, in the caller's transaction", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const q = fresh("lifecycle")
      yield* sql`SELECT pgmq.create(${q}::text)`
      yield* sql`SELECT pgmq.create(${q}::text)`
      const tables = yield* sql<{ readonly tablename: string }>`
        SELECT tablename FROM pg_tables WHERE schemaname = 'pgmq' AND tablename IN (${`q_${q}`}, ${`a_${q}`}) ORDER BY 1`
      assert.deepStrictEqual(tables.map((row) => row.tablename), [`a_${q}`, `q_${q}`])
      const indexes = yield* sql<{ readonly indexname: string }>`
        SELECT indexname FROM pg_indexes WHERE schemaname = 'pgmq' AND indexname IN (${`q_${q}_vt_idx`}, ${`archived_at_idx_${q}`})`
      assert.lengthOf(indexes, 2)
      const meta = yield* sql<{ readonly n: number }>`SELECT count(*)::integer AS n FROM pgmq.meta WHERE queue_name = ${q}`
      assert.strictEqual(meta[0]!.n, 1)

      const rolledBack = fresh("rolled_back")
      yield* Effect.ignore(sql.withTransaction(
        Effect.andThen(sql`SELECT pgmq.create(${rolledBack}::text)`, Effect.fail("rollback"))
      ))
      const [gone] = yield* sql<{ readonly found: boolean }>`SELECT to_regclass(${`pgmq.q_${rolledBack}`}) IS NOT NULL AS found`
      assert.isFalse(gone!.found)
    }))

  it.effect("create: 47 characters at most, refused with pgmq's text; the longest names get their own indexes", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      assert.strictEqual(yield* failureOf(sql`SELECT pgmq.create(repeat('a', 48))`), tooLong)
      const [none] = yield* sql<{ readonly n: number }>`SELECT count(*)::integer AS n FROM pgmq.meta WHERE length(queue_name) > 47`
      assert.strictEqual(none!.n, 0)
      // Two 47-character names that differ only in their last character: nothing is cut, nothing shared.
      const stem = "x".repeat(46)
      yield* sql`SELECT pgmq.create(${`${stem}1`}::text)`
      yield* sql`SELECT pgmq.create(${`${stem}2`}::text)`
      const indexes = yield* sql<{ readonly table: string; readonly index: string }>`
        SELECT tablename AS table, indexname AS index FROM pg_indexes
        WHERE schemaname = 'pgmq' AND tablename LIKE ${`%${stem}%`} AND indexname NOT LIKE '%_pkey' ORDER BY 2`
      assert.deepStrictEqual(indexes.map((row) => [row.table, row.index]), [
        [`a_${stem}1`, `archived_at_idx_${stem}1`],
        [`a_${stem}2`, `archived_at_idx_${stem}2`],
        [`q_${stem}1`, `q_${stem}1_vt_idx`],
        [`q_${stem}2`, `q_${stem}2_vt_idx`]
      ])
      // Multi-byte characters could still be cut at 63 bytes: refused too.
      assert.strictEqual(
        yield* failureOf(sql`SELECT pgmq.create(repeat('é', 30))`),
        "queue name is too long, maximum length is 47 bytes"
      )
    }))

  it.effect("names pgmq accepts work in every function: hyphens, upper case (tables in lower case, meta as given)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      for (const q of [fresh("queue-hyphened"), fresh("QueueCased")]) {
        yield* sql`SELECT pgmq.create(${q}::text)`
        const [sent] = yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, '{"hello":"world"}'::jsonb) AS id`
        const read = yield* sql<{ readonly msg_id: bigint; readonly message: unknown }>`
          SELECT msg_id, message FROM pgmq.read(${q}::text, 1, 1)`
        assert.deepStrictEqual(read.map((row) => [row.msg_id, row.message]), [[sent!.id, { hello: "world" }]], q)
        const [archived] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.archive(${q}::text, ${sent!.id}::bigint) AS ok`
        assert.isTrue(archived!.ok, q)
        const [table] = yield* sql<{ readonly found: boolean }>`
          SELECT to_regclass(format('pgmq.%I', ${`a_${q.toLowerCase()}`}::text)) IS NOT NULL AS found`
        assert.isTrue(table!.found, q)
        const [metrics] = yield* sql<{ readonly queue_name: string }>`SELECT queue_name FROM pgmq.metrics(${q}::text)`
        assert.strictEqual(metrics!.queue_name, q)
        const listed = yield* sql<{ readonly queue_name: string }>`
          SELECT queue_name FROM pgmq.list_queues() WHERE queue_name = ${q}`
        assert.lengthOf(listed, 1, q)
        const [dropped] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue(${q}::text) AS ok`
        assert.isTrue(dropped!.ok, q)
      }
      const [formatted] = yield* sql<{ readonly name: string }>`SELECT pgmq.format_table_name('cat-dog', 'a') AS name`
      assert.strictEqual(formatted!.name, "a_cat-dog")
    }))

  it.effect("names carrying SQL are refused by every function with pgmq's fixed text, never echoed", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`SELECT pgmq.create('abc')`
      const hostile = [
        "abc where false;\n create table public.attack_vector(id int);\n delete from pgmq.q_abc",
        "x'; drop table pgmq.meta; --",
        "dollar$-signed",
        "double--hyphen",
        "single'quote"
      ]
      const calls = (name: string) => [
        sql`SELECT pgmq.create(${name}::text)`,
        sql`SELECT pgmq.drop_queue(${name}::text)`,
        sql`SELECT pgmq.drop_queue(${name}::text, true)`,
        sql`SELECT pgmq.purge_queue(${name}::text)`,
        sql`SELECT pgmq.metrics(${name}::text)`,
        sql`SELECT pgmq.send(${name}::text, '1'::jsonb)`,
        sql`SELECT pgmq.send_batch(${name}::text, ARRAY['1']::jsonb[])`,
        sql`SELECT * FROM pgmq.read(${name}::text, 1, 1)`,
        sql`SELECT * FROM pgmq.pop(${name}::text)`,
        sql`SELECT pgmq.delete(${name}::text, 1::bigint)`,
        sql`SELECT pgmq.archive(${name}::text, 1::bigint)`,
        sql`SELECT * FROM pgmq.set_vt(${name}::text, 1::bigint, 0)`,
        sql`SELECT pgmq.format_table_name(${name}::text, 'q')`
      ]
      for (const name of hostile) {
        for (const call of calls(name)) assert.strictEqual(yield* failureOf(call), invalidCharacters, name)
      }
      const [attack] = yield* sql<{ readonly found: boolean }>`SELECT to_regclass('public.attack_vector') IS NOT NULL AS found`
      assert.isFalse(attack!.found)
      const [meta] = yield* sql<{ readonly found: boolean }>`SELECT to_regclass('pgmq.meta') IS NOT NULL AS found`
      assert.isTrue(meta!.found)
    }))

  it.effect("drop_queue: true and gone when it existed, false when not; the deprecated form is always true", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const q = fresh("dropped")
      yield* sql`SELECT pgmq.create(${q}::text)`
      yield* sql`SELECT pgmq.send(${q}::text, '1'::jsonb)`
      const [dropped] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue(${q}::text) AS ok`
      assert.isTrue(dropped!.ok)
      const [state] = yield* sql<{ readonly q: boolean; readonly a: boolean; readonly meta: boolean }>`
        SELECT to_regclass(${`pgmq.q_${q}`}) IS NOT NULL AS q, to_regclass(${`pgmq.a_${q}`}) IS NOT NULL AS a,
               EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = ${q}) AS meta`
      assert.deepStrictEqual({ ...state! }, { q: false, a: false, meta: false })
      const [again] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue(${q}::text) AS ok`
      assert.isFalse(again!.ok)

      const old = fresh("dropped_old")
      yield* sql`SELECT pgmq.create(${old}::text)`
      const [deprecated] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue(${old}::text, false) AS ok`
      assert.isTrue(deprecated!.ok)
      const [oldGone] = yield* sql<{ readonly found: boolean }>`SELECT to_regclass(${`pgmq.q_${old}`}) IS NOT NULL AS found`
      assert.isFalse(oldGone!.found)
      const [missing] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.drop_queue(${old}::text, true) AS ok`
      assert.isTrue(missing!.ok, "upstream's deprecated form answers true even for a queue that does not exist")
    }))

  it.effect("purge_queue counts what it removed; list_queues, metrics and metrics_all report as pgmq does", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const q = fresh("metrics")
      yield* sql`SELECT pgmq.create(${q}::text)`
      yield* sql`SELECT pgmq.send_batch(${q}::text, ARRAY['1', '2', '3', '4', '5']::jsonb[])`
      yield* sql`SELECT pgmq.send_batch(${q}::text, ARRAY['6', '7']::jsonb[], 10)`
      yield* sql`SELECT pgmq.archive(${q}::text, 1::bigint)`
      const [metrics] = yield* sql<{
        readonly queue_name: string
        readonly queue_length: bigint
        readonly newest_msg_age_sec: number
        readonly oldest_msg_age_sec: number
        readonly total_messages: bigint
        readonly scrape_time: Date
        readonly queue_visible_length: bigint
      }>`SELECT queue_name, queue_length, newest_msg_age_sec, oldest_msg_age_sec, total_messages, scrape_time,
                queue_visible_length FROM pgmq.metrics(${q}::text)`
      // base.out: test_metrics_queue | 6 | 0 | 0 | 7 | 4
      assert.deepStrictEqual(
        [metrics!.queue_name, metrics!.queue_length, metrics!.newest_msg_age_sec, metrics!.oldest_msg_age_sec,
          metrics!.total_messages, metrics!.queue_visible_length],
        [q, 6n, 0, 0, 7n, 4n]
      )
      assert.instanceOf(metrics!.scrape_time, Date)

      const queues = yield* sql<{
        readonly queue_name: string
        readonly is_partitioned: boolean
        readonly is_unlogged: boolean
        readonly created_at: Date
      }>`SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.list_queues()`
      const { created_at, ...listed } = queues.find((row) => row.queue_name === q)!
      assert.deepStrictEqual(listed, { queue_name: q, is_partitioned: false, is_unlogged: false })
      assert.instanceOf(created_at, Date)
      const all = yield* sql<{ readonly queue_name: string }>`SELECT queue_name FROM pgmq.metrics_all()`
      assert.deepStrictEqual(all.map((row) => row.queue_name).sort(), queues.map((row) => row.queue_name).sort())

      const [purged] = yield* sql<{ readonly n: bigint }>`SELECT pgmq.purge_queue(${q}::text) AS n`
      assert.strictEqual(purged!.n, 6n)
      const [empty] = yield* sql<{ readonly n: number }>`SELECT count(*)::integer AS n FROM pgmq.${sql(`q_${q}`)}`
      assert.strictEqual(empty!.n, 0)
      const [after] = yield* sql<{ readonly total: bigint }>`SELECT total_messages AS total FROM pgmq.metrics(${q}::text)`
      assert.strictEqual(after!.total, 7n, "purging does not reset the message count")
    }))
})
