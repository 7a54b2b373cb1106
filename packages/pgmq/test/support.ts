/**
 * Shared test plumbing: the database URL (DATABASE_URL overrides the local
 * default), throw-away databases for tests that install their own
 * configuration, unique queue names, and a TCP proxy to cut connections.
 */
import { PgClient } from "@effect/sql-pg"
import { QueueName } from "@conveyor/core"
import { Effect, Layer, Redacted, Schedule } from "effect"
import { Pgmq } from "@conveyor/pgmq"

export const baseUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

export const urlFor = (database: string) => {
  const url = new URL(baseUrl)
  url.pathname = `/${database}`
  return url.toString()
}

const tag = () => Math.random().toString(36).slice(2, 10).padEnd(8, "0")

export const uniqueQueue = (prefix = "pt") => QueueName.makeUnsafe(`${prefix}_${tag()}`)

/** A quick schedule so tests do not wait for the production one. */
export const fastReconnect = Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 50 }))

export const adminLayer = PgClient.layer({ url: Redacted.make(baseUrl), maxConnections: 2 })

/** A fresh, empty database for the scope of a test; dropped afterwards. */
export const freshDatabase = Effect.acquireRelease(
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const name = `conveyor_pgmq_${tag()}`
    yield* sql.unsafe(`CREATE DATABASE ${name}`).unprepared
    return name
  }).pipe(Effect.provide(adminLayer), Effect.orDie),
  (name) =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      yield* sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).unprepared
    }).pipe(Effect.provide(adminLayer), Effect.orDie)
)

/** A PgClient on database `name`, for the scope of a test. */
export const clientOn = (name: string) =>
  Layer.build(PgClient.layer({ url: Redacted.make(urlFor(name)), maxConnections: 4 })).pipe(
    Effect.map((context) => context),
    Effect.orDie
  )

export const testLayer = (options: Partial<Pgmq.Options> = {}) =>
  Pgmq.layer({ url: Redacted.make(baseUrl), reconnect: fastReconnect, fallbackPollingInterval: "1 second", ...options })
