/**
 * Queues other clients create under names Conveyor itself refuses (upper case,
 * `-`), which upstream pgmq and our schema accept: their tables are lower-cased
 * and still get the notify trigger, so their sends announce themselves.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { Messaging } from "@conveyor/core"
import { baseUrl, testLayer } from "./support.ts"

describe("notify triggers on foreign queue names", () => {
  it.live("upper-case and hyphenated names created by plain SQL get the trigger", () =>
    Effect.gen(function*() {
      yield* Messaging.Messaging
      const sql = yield* PgClient.PgClient
      const tag = Math.random().toString(36).slice(2, 8)
      for (const name of [`CaseQ_${tag}`, `hy-phen-${tag}`]) {
        yield* sql`SELECT pgmq."create"(${name}::text)`
        const [row] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::integer AS n FROM pg_trigger
          WHERE tgrelid = to_regclass(${`pgmq."q_${name.toLowerCase()}"`}::text) AND tgname = 'conveyor_notify'`
        yield* sql`SELECT pgmq.drop_queue(${name}::text)`
        assert.strictEqual(row!.n, 1, name)
      }
    }).pipe(
      Effect.provide(Layer.merge(testLayer(), PgClient.layer({ url: Redacted.make(baseUrl), maxConnections: 1 })).pipe(Layer.orDie))
    ))
})
