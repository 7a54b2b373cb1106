/**
 * The PGMQ-compatible schema against pgmq 1.11, message function by message
 * function: every overload of send, send_batch and set_vt, read (visibility,
 * conditional, last_read_at), pop, delete and archive, with pgmq's error
 * texts. Expected values come from pgmq's regression script
 * `test/sql/base.sql` and `test/expected/base.out`.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { failureOf, fresh, installedDatabase } from "./schema-support.ts"

interface Row {
  readonly msg_id: bigint
  readonly read_ct: number
  readonly enqueued_at: Date
  readonly last_read_at: Date | null
  readonly vt: Date
  readonly message: unknown
  readonly headers: unknown
}

layer(installedDatabase, { excludeTestServices: true, timeout: "60 seconds" })("PGMQ-compatible schema: messages", (it) => {
  const queue = (base: string) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const q = fresh(base)
      yield* sql`SELECT pgmq.create(${q}::text)`
      const rows = sql<Row>`SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers
                            FROM pgmq.${sql(`q_${q}`)} ORDER BY msg_id`
      return { q, rows }
    })

  it.effect("send: all six overloads, positional and named; delays as seconds or a timestamp", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { q, rows } = yield* queue("send")
      const at = new Date(Date.now() + 3_600_000)
      const ids = [
        yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, '{"n":1}'::jsonb) AS id`,
        yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, '{"n":2}'::jsonb, '{"h":"x"}'::jsonb) AS id`,
        yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, '{"n":3}'::jsonb, 3600) AS id`,
        yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, '{"n":4}'::jsonb, ${at}::timestamptz) AS id`,
        yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, '{"n":5}'::jsonb, '{"k":1}'::jsonb, 3600) AS id`,
        yield* sql<{ readonly id: bigint }>`
          SELECT pgmq.send(${q}::text, '{"n":6}'::jsonb, '{"k":2}'::jsonb, ${at}::timestamptz) AS id`,
        yield* sql<{ readonly id: bigint }>`
          SELECT pgmq.send(queue_name => ${q}::text, msg => '{"n":7}'::jsonb, headers => '{"k":3}'::jsonb, delay => 0) AS id`,
        yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${q}::text, NULL) AS id`
      ].map(([row]) => row!.id)
      assert.deepStrictEqual(ids, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n])
      const stored = yield* rows
      assert.deepStrictEqual(stored.map((row) => row.message), [
        { n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }, { n: 6 }, { n: 7 }, null
      ])
      assert.deepStrictEqual(stored.map((row) => row.headers), [null, { h: "x" }, null, null, { k: 1 }, { k: 2 }, { k: 3 }, null])
      const now = Date.now()
      const delayed = stored.map((row) => row.vt.getTime() > now + 3_000_000)
      assert.deepStrictEqual(delayed, [false, false, true, true, true, true, false, false])
      assert.strictEqual(stored[3]!.vt.getTime(), at.getTime(), "a timestamp delay is the vt itself")
      assert.isTrue(stored.every((row) => row.read_ct === 0 && row.last_read_at === null))
    }))

  it.effect("send_batch: all six overloads in order; empty or mismatched arrays refused as pgmq refuses them", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { q, rows } = yield* queue("batch")
      const at = new Date(Date.now() + 3_600_000)
      const batches = [
        yield* sql<{ readonly id: bigint }>`SELECT * FROM pgmq.send_batch(${q}::text, ARRAY['1', '2']::jsonb[]) AS id`,
        yield* sql<{ readonly id: bigint }>`
          SELECT * FROM pgmq.send_batch(${q}::text, ARRAY['3', '4']::jsonb[], ARRAY['{"h":3}', '{"h":4}']::jsonb[]) AS id`,
        yield* sql<{ readonly id: bigint }>`SELECT * FROM pgmq.send_batch(${q}::text, ARRAY['5']::jsonb[], 3600) AS id`,
        yield* sql<{ readonly id: bigint }>`
          SELECT * FROM pgmq.send_batch(${q}::text, ARRAY['6']::jsonb[], ${at}::timestamptz) AS id`,
        yield* sql<{ readonly id: bigint }>`
          SELECT * FROM pgmq.send_batch(${q}::text, ARRAY['7']::jsonb[], ARRAY['{"h":7}']::jsonb[], 3600) AS id`,
        yield* sql<{ readonly id: bigint }>`
          SELECT * FROM pgmq.send_batch(${q}::text, ARRAY['8']::jsonb[], ARRAY['{"h":8}']::jsonb[], ${at}::timestamptz) AS id`
      ].map((batch) => batch.map((row) => row.id))
      assert.deepStrictEqual(batches, [[1n, 2n], [3n, 4n], [5n], [6n], [7n], [8n]])
      const stored = yield* rows
      assert.deepStrictEqual(stored.map((row) => row.message), [1, 2, 3, 4, 5, 6, 7, 8])
      assert.deepStrictEqual(stored.map((row) => row.headers), [null, null, { h: 3 }, { h: 4 }, null, null, { h: 7 }, { h: 8 }])
      const now = Date.now()
      assert.deepStrictEqual(stored.map((row) => row.vt.getTime() > now + 3_000_000), [
        false, false, false, false, true, true, true, true
      ])

      assert.strictEqual(
        yield* failureOf(sql`SELECT pgmq.send_batch(${q}::text, ARRAY['1', '2']::jsonb[], ARRAY['{}', '{}', '{}']::jsonb[])`),
        "headers array length (3) must match msgs array length (2)"
      )
      for (const empty of [
        sql`SELECT pgmq.send_batch(${q}::text, ARRAY[]::jsonb[])`,
        sql`SELECT pgmq.send_batch(${q}::text, ARRAY[]::jsonb[], ARRAY[]::jsonb[])`,
        sql`SELECT pgmq.send_batch(${q}::text, NULL::jsonb[], 0)`
      ]) {
        assert.strictEqual(yield* failureOf(empty), "msgs cannot be NULL or empty")
      }
      assert.lengthOf(yield* rows, 8, "nothing was sent by the refused batches")
    }))

  it.effect("read: visible messages in order up to qty, invisible for vt seconds, read_ct and last_read_at set", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { q } = yield* queue("read")
      yield* sql`SELECT pgmq.send_batch(${q}::text, ARRAY['{"hello":"world"}', '{"n":2}', '{"n":3}']::jsonb[])`
      yield* sql`SELECT pgmq.send(${q}::text, '{"n":4}'::jsonb, 3600)`
      const first = yield* sql<Row>`SELECT * FROM pgmq.read(${q}::text, 5, 1)`
      assert.deepStrictEqual(first.map((row) => row.msg_id), [1n])
      const rest = yield* sql<Row>`SELECT * FROM pgmq.read(${q}::text, 10, 5)`
      assert.deepStrictEqual(rest.map((row) => row.msg_id).sort(), [2n, 3n], "the delayed and the claimed stay hidden")
      for (const row of [...first, ...rest]) {
        assert.strictEqual(row.read_ct, 1)
        assert.isNotNull(row.last_read_at)
        assert.isAtLeast(row.vt.getTime() - row.last_read_at!.getTime(), 4_900)
      }
      assert.lengthOf(yield* sql`SELECT msg_id FROM pgmq.read(${q}::text, 10, 5)`, 0)

      // Read again once visible: read_ct counts, last_read_at moves on.
      yield* sql`SELECT msg_id FROM pgmq.set_vt(${q}::text, 1::bigint, 0), pg_sleep(0.01)`
      const [again] = yield* sql<Row>`SELECT * FROM pgmq.read(${q}::text, 0, 1)`
      assert.strictEqual(again!.read_ct, 2)
      assert.isAbove(again!.last_read_at!.getTime(), first[0]!.last_read_at!.getTime())

      // conditional: only messages containing it; '{}' and NULL match all.
      yield* sql`SELECT msg_id FROM pgmq.set_vt(${q}::text, ARRAY[1, 2, 3]::bigint[], 0)`
      const matching = yield* sql<Row>`SELECT * FROM pgmq.read(${q}::text, 0, 10, '{"hello":"world"}'::jsonb)`
      assert.deepStrictEqual(matching.map((row) => row.msg_id), [1n])
      const everything = yield* sql<Row>`SELECT * FROM pgmq.read(${q}::text, 0, 10, NULL::jsonb)`
      assert.deepStrictEqual(everything.map((row) => row.msg_id).sort(), [1n, 2n, 3n])
    }))

  it.effect("pop: deletes and returns visible messages as stored (last_read_at only if read before)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { q, rows } = yield* queue("pop")
      assert.lengthOf(yield* sql`SELECT * FROM pgmq.pop(${q}::text)`, 0)
      yield* sql`SELECT pgmq.send_batch(${q}::text, ARRAY['1', '2', '3', '4']::jsonb[])`
      yield* sql`SELECT pgmq.send(${q}::text, '5'::jsonb, 3600)`
      const [one] = yield* sql<Row>`SELECT * FROM pgmq.pop(${q}::text)`
      assert.strictEqual(one!.msg_id, 1n)
      assert.isNull(one!.last_read_at, "never read: pop does not set last_read_at")
      assert.strictEqual(one!.read_ct, 0)
      yield* sql`SELECT msg_id FROM pgmq.read(${q}::text, 0, 1)`
      const [two] = yield* sql<Row>`SELECT * FROM pgmq.pop(${q}::text)`
      assert.strictEqual(two!.msg_id, 2n)
      assert.isNotNull(two!.last_read_at, "read first: pop returns its last_read_at")
      const many = yield* sql<Row>`SELECT * FROM pgmq.pop(${q}::text, 10)`
      assert.deepStrictEqual(many.map((row) => row.msg_id).sort(), [3n, 4n])
      assert.deepStrictEqual((yield* rows).map((row) => row.msg_id), [5n], "only the delayed one is left")
    }))

  it.effect("delete and archive: single ids answer a boolean, arrays the ids they found; archived rows keep everything", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { q, rows } = yield* queue("settle")
      yield* sql`SELECT pgmq.send(${q}::text, '0'::jsonb, '{"headers":1}'::jsonb)`
      yield* sql`SELECT pgmq.send_batch(${q}::text, ARRAY['0', '0', '0', '0']::jsonb[])`
      yield* sql`SELECT msg_id FROM pgmq.read(${q}::text, 0, 1)`
      const archivedMany = yield* sql<{ readonly id: bigint }>`
        SELECT * FROM pgmq.archive(${q}::text, ARRAY[1, 2, -3]::bigint[]) AS id`
      assert.deepStrictEqual(archivedMany.map((row) => row.id).sort(), [1n, 2n])
      const [archived] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.archive(${q}::text, 3::bigint) AS ok`
      assert.isTrue(archived!.ok)
      const [notThere] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.archive(${q}::text, 3::bigint) AS ok`
      assert.isFalse(notThere!.ok)
      const archive = yield* sql<Row & { readonly archived_at: Date }>`
        SELECT msg_id, read_ct, enqueued_at, last_read_at, archived_at, vt, message, headers
        FROM pgmq.${sql(`a_${q}`)} ORDER BY msg_id`
      assert.deepStrictEqual(archive.map((row) => [row.msg_id, row.message, row.headers, row.read_ct]), [
        [1n, 0, { headers: 1 }, 1],
        [2n, 0, null, 0],
        [3n, 0, null, 0]
      ])
      assert.isNotNull(archive[0]!.last_read_at)
      assert.isTrue(archive.every((row) => row.archived_at instanceof Date))

      const [deleted] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.delete(${q}::text, 4::bigint) AS ok`
      assert.isTrue(deleted!.ok)
      const [deletedAgain] = yield* sql<{ readonly ok: boolean }>`SELECT pgmq.delete(${q}::text, 4::bigint) AS ok`
      assert.isFalse(deletedAgain!.ok)
      const deletedMany = yield* sql<{ readonly id: bigint }>`
        SELECT * FROM pgmq.delete(${q}::text, ARRAY[5, 999]::bigint[]) AS id`
      assert.deepStrictEqual(deletedMany.map((row) => row.id), [5n])
      assert.lengthOf(yield* rows, 0)
    }))

  it.effect("set_vt: all four overloads return the updated rows; seconds count from now, a timestamp is the vt", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { q } = yield* queue("set_vt")
      assert.lengthOf(yield* sql`SELECT * FROM pgmq.set_vt(${q}::text, 9999::bigint, 0)`, 0)
      yield* sql`SELECT pgmq.send_batch(${q}::text, ARRAY['1', '2']::jsonb[])`
      const visible = () => Effect.map(sql<Row>`SELECT * FROM pgmq.read(${q}::text, 0, 5)`, (rows) => rows.map((row) => row.msg_id).sort())

      const [hidden] = yield* sql<Row>`SELECT * FROM pgmq.set_vt(${q}::text, 1::bigint, 100)`
      assert.strictEqual(hidden!.msg_id, 1n)
      assert.isAbove(hidden!.vt.getTime(), Date.now() + 90_000)
      assert.isNull(hidden!.last_read_at)
      assert.deepStrictEqual(yield* visible(), [2n])

      const at = new Date(Date.now() + 65_000)
      const both = yield* sql<Row>`SELECT * FROM pgmq.set_vt(${q}::text, ARRAY[1, 2]::bigint[], ${at}::timestamptz)`
      assert.deepStrictEqual(both.map((row) => [row.msg_id, row.vt.getTime()]).sort(), [[1n, at.getTime()], [2n, at.getTime()]])
      assert.deepStrictEqual(yield* visible(), [])

      const [one] = yield* sql<Row>`SELECT * FROM pgmq.set_vt(${q}::text, 1::bigint, now())`
      assert.isAtMost(one!.vt.getTime(), Date.now())
      assert.deepStrictEqual(yield* visible(), [1n])

      const backNow = yield* sql<Row>`SELECT * FROM pgmq.set_vt(${q}::text, ARRAY[1, 2]::bigint[], 0)`
      assert.deepStrictEqual(backNow.map((row) => row.msg_id).sort(), [1n, 2n])
      assert.isTrue(backNow.every((row) => row.last_read_at !== null), "set_vt returns last_read_at of read messages")
      assert.deepStrictEqual(yield* visible(), [1n, 2n])
    }))
})
