/**
 * Coalescing of concurrent per-item operations (acks, claims by id, sends)
 * into one provider round trip, on Effect's `RequestResolver`.
 *
 * Natural batching: a call waits one microtask, so the calls made in the same
 * run of the event loop's current callback (workers released together, callers
 * resumed by one reply) share its round trip; no window and no scheduler round,
 * so a lone call goes out in the turn it was made. While `maxInFlight` round
 * trips of a key are running, further calls of that key gather into the next
 * batch, which starts as soon as one finishes. Each caller gets its own result:
 * `run` answers one `Exit` per item, so a stale receipt fails only the caller
 * that held it. A failure of the round trip itself fails every caller in it.
 *
 * A caller interrupted while its batch is on the wire is released at once,
 * but the round trip completes: callers that must not lose track of a claim
 * make their call uninterruptible.
 *
 * `all` runs items its caller already gathered (`Messaging.ackAll`): no
 * request per item, which is most of what a call costs here (W2@16 on Redis:
 * acks gathered by `Consumer.run` drain ~1.35× as fast as one call per ack).
 */
import { Array as Arr, Effect, Exit, Request, RequestResolver, Semaphore } from "effect"

export interface Options<I, A, E> {
  /** Items of different keys never share a round trip (e.g. `ack:<queue>`). */
  readonly key: (item: I) => string
  /** One round trip for `items`: one `Exit` per item, in input order. */
  readonly run: (items: Arr.NonEmptyReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, E>
  /** Largest batch (default 100); a batch that reaches it starts at once. */
  readonly maxBatchSize?: number
  /** Round trips of one key running at once (default 1). */
  readonly maxInFlight?: number
}

interface Call<I, A, E> extends Request.Request<A, E> {
  readonly item: I
}

/** A function that runs each item as part of a batch of concurrent calls of its key. */
export const make = <I, A, E>(options: Options<I, A, E>): Effect.Effect<(item: I) => Effect.Effect<A, E>> =>
  Effect.sync(() => {
    const call = Request.of<Call<I, A, E>>()
    const maxBatchSize = options.maxBatchSize ?? 100
    const maxInFlight = options.maxInFlight ?? 1

    // One resolver per key, so each key has its own in-flight bound and its batches wait
    // only on its own round trips. Keys are few (an operation per queue) and live as long
    // as the provider.
    const resolvers = new Map<string, RequestResolver.RequestResolver<Call<I, A, E>>>()
    const resolverFor = (key: string) => {
      const existing = resolvers.get(key)
      if (existing !== undefined) return existing
      const slots = Semaphore.makeUnsafe(maxInFlight)
      const created = RequestResolver.makeWith<Call<I, A, E>>({
        batchKey: () => key,
        // Gather while every slot is busy; hold none while gathering, so an abandoned
        // batch leaks nothing. `run` takes the slot for real.
        delay: Effect.andThen(microtask, Semaphore.withPermits(slots, 1)(Effect.void)),
        collectWhile: (entries) => entries.size < maxBatchSize,
        runAll: (entries) =>
          Semaphore.withPermits(slots, 1)(
            Effect.map(
              options.run(entries.map((entry) => entry.request.item) as unknown as Arr.NonEmptyReadonlyArray<I>),
              (exits) => entries.forEach((entry, i) => entry.completeUnsafe(exits[i] ?? missing))
            )
          )
      })
      resolvers.set(key, created)
      return created
    }

    return (item: I) => Effect.request(call({ item }), resolverFor(options.key(item)))
  })

/**
 * Runs `items`, which the caller gathered, as `options` would batch them: one round trip per
 * key and per `maxBatchSize` items, concurrently, answering one `Exit` per item in input order;
 * a round trip that fails fails only its own items. It takes no in-flight slot of `make`'s:
 * its caller bounds its own round trips.
 */
export const all = <I, A, E>(options: Options<I, A, E>) => {
  const maxBatchSize = options.maxBatchSize ?? 100
  return (items: ReadonlyArray<I>): Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>> =>
    Arr.isReadonlyArrayNonEmpty(items)
      ? runGroups(items, groupsOf(items, options.key).flatMap((group) => chunks(group, maxBatchSize)), options.run)
      : Effect.succeed([])
}

/**
 * Runs `run` once per group of items sharing `groupOf`, concurrently, answering in input order.
 * For what must differ per round trip (a send's delay, a claim's visibility timeout) without
 * making it part of a batching key: keys live as long as the provider, these values are
 * unbounded. A group that fails fails only its own items.
 */
export const perGroup = <I, A, E>(
  items: Arr.NonEmptyReadonlyArray<I>,
  groupOf: (item: I) => string | number,
  run: (group: Arr.NonEmptyReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, E>
): Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>> => runGroups(items, groupsOf(items, groupOf), run)

/** Indices of `items`, grouped by `groupOf`, each group in input order. */
const groupsOf = <I>(items: ReadonlyArray<I>, groupOf: (item: I) => string | number): Array<Array<number>> => {
  const groups = new Map<string | number, Array<number>>()
  items.forEach((item, at) => {
    const key = groupOf(item)
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [at])
    else group.push(at)
  })
  return [...groups.values()]
}

const chunks = (indices: Array<number>, size: number): Array<Array<number>> => {
  if (indices.length <= size) return [indices]
  const out: Array<Array<number>> = []
  for (let i = 0; i < indices.length; i += size) out.push(indices.slice(i, i + size))
  return out
}

const runGroups = <I, A, E>(
  items: ReadonlyArray<I>,
  groups: ReadonlyArray<ReadonlyArray<number>>,
  run: (group: Arr.NonEmptyReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, E>
): Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>> => {
  const results = new Array<Exit.Exit<A, E>>(items.length)
  const runGroup = (indices: ReadonlyArray<number>) => {
    const group = indices.map((at) => items[at]!) as unknown as Arr.NonEmptyReadonlyArray<I>
    return Effect.map(
      Effect.exit(run(group)),
      (exit) => {
        indices.forEach((at, i) => results[at] = Exit.isSuccess(exit) ? exit.value[i] ?? missing : Exit.failCause(exit.cause))
        return results
      }
    )
  }
  // One group (the usual case) runs in the caller's fiber, in one step: a forked one starts a
  // scheduler turn later.
  return groups.length === 1
    ? runGroup(groups[0]!)
    : Effect.as(Effect.forEach(groups, runGroup, { concurrency: "unbounded", discard: true }), results)
}

/**
 * Resumes once the synchronous work now running is done, before any I/O or timer. Not
 * `Effect.yieldNow`: that waits for a scheduler round (a `setImmediate`), behind every task
 * already queued — ~40 µs of a lone Redis send in W1.
 */
const microtask = Effect.callback<void>((resume) => queueMicrotask(() => resume(Effect.void)))

const missing = Exit.die(new Error("Batching: run answered fewer results than items"))
