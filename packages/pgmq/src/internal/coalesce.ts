/**
 * Core's `Batching` on the provider's `PgClient`, minus the caller's
 * transaction: a call made inside that client's `sql.withTransaction` runs
 * on its own, on the transaction's connection, so it commits or rolls back
 * with the caller's writes and never shares a statement with work outside it.
 */
import { Batching } from "@conveyor/core"
import type { PgClient } from "@effect/sql-pg"
import { type Array as Arr, Effect, Exit, Option } from "effect"

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

/**
 * Runs `run` once per group of items sharing `groupOf`, concurrently, answering in input order.
 * For what must differ per statement (a send's delay, a claim's visibility timeout) without
 * making it part of the key: keys live as long as the provider, these values are unbounded.
 * A group that fails fails only its own items.
 */
export const perGroup = <I, A, E>(
  items: Arr.NonEmptyReadonlyArray<I>,
  groupOf: (item: I) => number,
  run: (group: Arr.NonEmptyReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, E>
): Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>> => {
  const groups = new Map<number, Array<number>>()
  items.forEach((item, at) => {
    const key = groupOf(item)
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [at])
    else group.push(at)
  })
  const results = new Array<Exit.Exit<A, E>>(items.length)
  return Effect.as(
    Effect.forEach(groups.values(), (indices) => {
      const group = indices.map((at) => items[at]!) as unknown as Arr.NonEmptyReadonlyArray<I>
      return Effect.map(
        Effect.exit(run(group)),
        (exit) => indices.forEach((at, i) => results[at] = Exit.isSuccess(exit) ? exit.value[i]! : Exit.failCause(exit.cause))
      )
      // One group (the usual case) runs in the caller's fiber: a forked one starts a scheduler turn later.
    }, { concurrency: groups.size > 1 ? "unbounded" : 1, discard: true }),
    results
  )
}
