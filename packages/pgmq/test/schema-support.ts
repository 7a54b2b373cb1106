/**
 * Plumbing for the tests of the PGMQ-compatible schema's SQL functions: one
 * throw-away database per test file with the schema (and the notify
 * triggers, as the provider installs them) in place, and the text of the
 * error PostgreSQL raised.
 */
import { PgmqInstaller, PgmqNotifyConfig } from "@conveyor/pgmq"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import { freshDatabase, urlFor } from "./support.ts"

export const installedDatabase = Layer.unwrap(Effect.gen(function*() {
  const name = yield* freshDatabase
  const client = PgClient.layer({ url: Redacted.make(urlFor(name)), maxConnections: 3 })
  const install = Effect.flatMap(PgmqNotifyConfig.make({}), (config) => PgmqInstaller.install(config))
  return Layer.provideMerge(Layer.effectDiscard(install), client)
})).pipe(Layer.orDie)

/** The message of the error the server raised (not the driver's wrapping of it). */
export const serverMessage = (error: SqlError): string => {
  const cause: unknown = error.reason.cause
  return typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : error.message
}

/** Runs `statement`, which must fail, and gives the server's message. */
export const failureOf = <A>(statement: Effect.Effect<A, SqlError>) =>
  Effect.map(Effect.flip(statement), serverMessage)

let counter = 0
/** A queue name unique within the test database. */
export const fresh = (base: string) => `${base}_${++counter}`
