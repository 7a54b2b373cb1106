/** What the PostgreSQL-based subjects share: the database, and a pooled or single `pg` connection. */
import { Effect } from "effect"
import pg from "pg"

export const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

export const pool = (max: number) =>
  Effect.acquireRelease(
    Effect.sync(() => new pg.Pool({ connectionString: url, max, application_name: "conveyor-bench" })),
    (p) => Effect.promise(() => p.end())
  )

export const client = Effect.acquireRelease(
  Effect.promise(async () => {
    const c = new pg.Client({ connectionString: url, application_name: "conveyor-bench" })
    await c.connect()
    return c
  }),
  (c) => Effect.promise(() => c.end().catch(() => undefined))
)

/**
 * VACUUM of a peer's job table, which every run shares: dead rows of earlier
 * runs would otherwise slow the later ones. Tables that do not exist yet are skipped.
 */
export const vacuum = (tables: ReadonlyArray<string>) =>
  Effect.scoped(Effect.gen(function*() {
    const c = yield* client
    for (const table of tables) {
      const { rows } = yield* Effect.promise(() => c.query<{ exists: boolean }>("SELECT to_regclass($1) IS NOT NULL AS exists", [table]))
      if (rows[0]?.exists) yield* Effect.promise(() => c.query(`VACUUM ANALYZE ${table}`))
    }
  }))
