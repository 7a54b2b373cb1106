/**
 * Finds out what a database has (the real `pgmq` extension, Conveyor's own
 * PGMQ-compatible schema, some other PGMQ install, or nothing) and installs
 * what is missing: the schema when there is no PGMQ at all, and the notify
 * triggers. Idempotent and versioned: versions and the notify configuration
 * live in `pgmq.conveyor_version`, and the whole install runs in one
 * transaction under an advisory lock, so concurrent installers serialize.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import * as PgmqNotify from "./PgmqNotify.ts"
import * as NotifyConfig from "./PgmqNotifyConfig.ts"
import * as PgmqSchema from "./PgmqSchema.ts"

export class InstallConflict extends Schema.TaggedError<InstallConflict>()("InstallConflict", {
  message: Schema.String
}) {}

/** Where the `pgmq` schema comes from. */
export type Flavor =
  | { readonly _tag: "Extension"; readonly version: string }
  | { readonly _tag: "Conveyor"; readonly version: number }
  /** A `pgmq` schema neither from the extension nor from us (e.g. PGMQ's SQL-only install). */
  | { readonly _tag: "Foreign" }
  | { readonly _tag: "Absent" }

export interface Installation {
  readonly flavor: Flavor
  /** The installed notify triggers, if any. */
  readonly notify?: { readonly version: number; readonly config: unknown }
}

/** The oldest extension whose tables and functions we rely on. */
export const minimumExtensionVersion = "1.5.0"

/** Installs take the schema's DDL lock (see `PgmqSchema.lockKey`). */
export const lockKey = PgmqSchema.lockKey

const atLeast = (version: string, minimum: string): boolean => {
  const parse = (v: string) => v.split(".").map((part) => Number.parseInt(part, 10) || 0)
  const [a, b] = [parse(version), parse(minimum)]
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const [x, y] = [a[i] ?? 0, b[i] ?? 0]
    if (x !== y) return x > y
  }
  return true
}

/** Reads the database's PGMQ situation; changes nothing. */
export const detect: Effect.Effect<Installation, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [probe] = yield* sql<{
    readonly extversion: string | null
    readonly has_meta: boolean
    readonly has_version: boolean
  }>`SELECT (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'pgmq') AS extversion,
            to_regclass('pgmq.meta') IS NOT NULL AS has_meta,
            to_regclass('pgmq.conveyor_version') IS NOT NULL AS has_version`
  const rows = probe?.has_version
    ? yield* sql<{ readonly component: string; readonly version: number; readonly config: unknown }>`
        SELECT component, version, config FROM pgmq.conveyor_version`
    : []
  const component = (name: string) => rows.find((row) => row.component === name)
  const schema = component("schema")
  const notify = component("notify")
  const flavor: Flavor = probe?.extversion != null
    ? { _tag: "Extension", version: probe.extversion }
    : schema !== undefined
    ? { _tag: "Conveyor", version: schema.version }
    : probe?.has_meta
    ? { _tag: "Foreign" }
    : { _tag: "Absent" }
  return notify === undefined ? { flavor } : { flavor, notify: { version: notify.version, config: notify.config } }
})

const runAll = (statements: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(statements, (statement) => sql.unsafe(statement).unprepared, { discard: true }))

const record = (component: string, version: number, config: unknown) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO pgmq.conveyor_version (component, version, config, installed_at)
        VALUES (${component}::text, ${version}::integer, ${JSON.stringify(config)}::jsonb, now())
        ON CONFLICT (component) DO UPDATE
        SET version = excluded.version, config = excluded.config, installed_at = excluded.installed_at`)

const sameConfig = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

export interface InstallOptions {
  /** Install the notify triggers (default true). */
  readonly notify?: boolean
}

/**
 * Installs the compatible schema when the database has no PGMQ, then the
 * notify triggers with `config` (re-installed when the recorded config or
 * version differs). Returns what is installed afterwards.
 */
export const install = (
  config: NotifyConfig.NotifyConfig,
  options: InstallOptions = {}
): Effect.Effect<Installation, SqlError | InstallConflict, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(${lockKey}::integer)`
      const before = yield* detect
      const flavor = before.flavor
      if (flavor._tag === "Extension" && !atLeast(flavor.version, minimumExtensionVersion)) {
        return yield* new InstallConflict({
          message: `The pgmq extension is version ${flavor.version}; Conveyor needs ${minimumExtensionVersion} or later`
        })
      }
      if (flavor._tag === "Conveyor" && flavor.version > PgmqSchema.version) {
        return yield* new InstallConflict({
          message: `The database's Conveyor PGMQ schema is version ${flavor.version}, newer than this library's ${PgmqSchema.version}`
        })
      }
      if (flavor._tag === "Absent" || (flavor._tag === "Conveyor" && flavor.version < PgmqSchema.version)) {
        yield* runAll(PgmqSchema.statements)
        yield* record("schema", PgmqSchema.version, {})
      }
      if (options.notify === false) return yield* detect
      const wanted = NotifyConfig.toJson(config)
      if (before.notify !== undefined && before.notify.version > PgmqNotify.version) {
        return yield* new InstallConflict({
          message: `The database's notify triggers are version ${before.notify.version}, newer than this library's ${PgmqNotify.version}`
        })
      }
      if (
        before.notify === undefined || before.notify.version < PgmqNotify.version ||
        !sameConfig(before.notify.config, wanted)
      ) {
        yield* runAll([PgmqSchema.versionTable, ...PgmqNotify.statements(config)])
        yield* record("notify", PgmqNotify.version, wanted)
      }
      return yield* detect
    }))
  })

/** Removes the notify triggers and, when `schema` is set and the schema is ours, the whole `pgmq` schema. */
export const uninstall = (options: { readonly schema: boolean }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(${lockKey}::integer)`
      const before = yield* detect
      if (before.flavor._tag === "Absent") return
      yield* runAll(PgmqNotify.rollback)
      if (options.schema && before.flavor._tag === "Conveyor") yield* runAll(PgmqSchema.rollback)
      else if (before.notify !== undefined) yield* sql`DELETE FROM pgmq.conveyor_version WHERE component = 'notify'`
    }))
  })
