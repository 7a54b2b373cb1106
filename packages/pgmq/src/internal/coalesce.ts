/**
 * Core's `Batching` on the provider's `PgClient`, minus the caller's
 * transaction: a call made inside that client's `sql.withTransaction` runs
 * on its own, on the transaction's connection, so it commits or rolls back
 * with the caller's writes and never shares a statement with work outside it.
 */
import { Batching } from "@conveyor/core"
import type { PgClient } from "@effect/sql-pg"
import { Effect, Option } from "effect"

export const make = <I, A, E>(
  sql: PgClient.PgClient,
  options: Batching.Options<I, A, E>
): Effect.Effect<(item: I) => Effect.Effect<A, E>> =>
  Effect.map(Batching.make(options), (batched) => {
    const alone = (item: I) => Effect.flatMap(options.run([item]), (exits) => exits[0]!)
    return (item: I) =>
      Effect.flatMap(
        Effect.serviceOption(sql.transactionService),
        Option.match({ onNone: () => batched(item), onSome: () => alone(item) })
      )
  })
