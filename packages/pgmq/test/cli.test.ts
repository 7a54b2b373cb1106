/**
 * `conveyor-pgmq`, run as a user runs it (a child process), against
 * throw-away databases and directories.
 */
import { PgmqSchema } from "@conveyor/pgmq"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { execFile } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { freshDatabase, urlFor } from "./support.ts"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : (error.code as number) ?? 1, stdout, stderr })))
  })

const tempDir = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "conveyor-pgmq-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

const runScript = (url: string, file: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const text = yield* Effect.promise(() => Fs.readFile(file, "utf8"))
    // Generated files separate statements with ";\n\n" (function bodies never contain that).
    for (const statement of text.split(/;\n\n/).map((s) => s.replace(/^(--[^\n]*\n)+/g, "").trim()).filter(Boolean)) {
      yield* sql.unsafe(statement.replace(/;$/, "")).unprepared
    }
  }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }).pipe(Layer.orDie)))

describe("conveyor-pgmq CLI", () => {
  it.live("generate-migration writes up and down scripts that apply and roll back", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const database = yield* freshDatabase
      const url = urlFor(database)
      const result = yield* cli([
        "generate-migration",
        "--output-dir", dir,
        "--name", "notify",
        "--channel-prefix", "app",
        "--with-schema",
        "--rollback"
      ])
      assert.strictEqual(result.code, 0, result.stderr)
      const files = (yield* Effect.promise(() => Fs.readdir(dir))).sort()
      assert.lengthOf(files, 2)
      assert.match(files[0]!, /_notify\.down\.sql$/)
      assert.match(files[1]!, /_notify\.up\.sql$/)
      yield* runScript(url, Path.join(dir, files[1]!))
      const status = yield* cli(["status"], { DATABASE_URL: url })
      assert.strictEqual(status.code, 0, status.stderr)
      assert.include(status.stdout, "0 queue(s)")
      const install = yield* cli(["install", "--channel-prefix", "app", "--database-url", url])
      assert.strictEqual(install.code, 0, install.stderr)
      assert.include(install.stdout, `Conveyor PGMQ-compatible schema v${PgmqSchema.version}`)
      assert.include(install.stdout, "app.pgmq_queue_created")
      yield* runScript(url, Path.join(dir, files[0]!))
      const after = yield* cli(["status", "--database-url", url])
      assert.include(after.stdout, "no pgmq schema")
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live("install then status lists queues with their depth", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase
      const url = urlFor(database)
      const install = yield* cli(["install"], { DATABASE_URL: url })
      assert.strictEqual(install.code, 0, install.stderr)
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"('orders_queue')`
        yield* sql`SELECT * FROM pgmq.send_batch('orders_queue', ARRAY['1', '2', '3']::jsonb[])`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }).pipe(Layer.orDie)))
      const status = yield* cli(["status"], { DATABASE_URL: url })
      assert.strictEqual(status.code, 0, status.stderr)
      assert.match(status.stdout, /orders_queue\s+3\s+3/)
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live("validate-config accepts a good file and refuses typos and bad values", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const write = (name: string, json: unknown) =>
        Effect.promise(async () => {
          const file = Path.join(dir, name)
          await Fs.writeFile(file, JSON.stringify(json))
          return file
        })
      const good = yield* cli(["validate-config", yield* write("good.json", { queuePattern: "(?<namespace>\\w+)_jobs" })])
      assert.strictEqual(good.code, 0, good.stderr)
      assert.include(good.stdout, "is valid")
      for (const [name, json] of [["typo.json", { chanelPrefix: "x" }], ["big.json", { notifyMaxBytes: 9000 }]] as const) {
        const bad = yield* cli(["validate-config", yield* write(name, json)])
        assert.notStrictEqual(bad.code, 0, name)
      }
      const missing = yield* cli(["validate-config", Path.join(dir, "nope.json")])
      assert.notStrictEqual(missing.code, 0)
    }).pipe(Effect.scoped), { timeout: 30_000 })
})
