/**
 * Queue management: a queue is its stream with this layer's group (and the
 * same for its `_dlq`), registered in the prefix's queue set for
 * `listQueues`; deleting removes every key of both, and wakes their
 * subscriptions to find them gone.
 */
import { type Messaging, QueueName } from "@conveyor/core"
import { Effect } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { fromRedis, queueNotFound } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./scripts.ts"

export const make = (redis: EffectRedis.Redis["Service"], keys: Keys, group: string) => {
  const createGroup = (queue: QueueName.QueueName) =>
    redis.send("XGROUP", "CREATE", keys.of(queue).stream, group, "0", "MKSTREAM").pipe(
      Effect.catchIf((error) => String(error.cause).includes("BUSYGROUP"), () => Effect.void),
      Effect.mapError(fromRedis("create", queue))
    )

  const ensureQueue = Effect.fnUntraced(function*(name: QueueName.QueueName, _opts?: Messaging.QueueOptions) {
    const queue = yield* QueueName.ensurable(yield* QueueName.make(name))
    yield* createGroup(queue)
    yield* createGroup(QueueName.deadLetter(queue))
    yield* redis.send("SADD", keys.registry, queue, QueueName.deadLetter(queue)).pipe(Effect.mapError(fromRedis("create", queue)))
  })

  const allKeys = (queue: QueueName.QueueName) => {
    const k = keys.of(queue)
    return [k.stream, k.delayed, k.wake, k.inFlight, k.retry, k.janitor]
  }

  const deleteQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    const dlq = QueueName.deadLetter(queue)
    yield* redis.send("DEL", ...allKeys(queue), ...allKeys(dlq)).pipe(Effect.mapError(fromRedis("delete_queue", queue)))
    // DEL does not end an XREAD blocked on the keys: an entry in each wake stream wakes the
    // subscriptions of either queue, whose claim step then finds it gone (QueueNotFound), and
    // the wake streams go again.
    const wakes = [keys.of(queue).wake, keys.of(dlq).wake]
    for (const wake of wakes) {
      yield* redis.send("XADD", wake, "*", "deleted", "1").pipe(Effect.mapError(fromRedis("delete_queue", queue)))
    }
    yield* redis.send("DEL", ...wakes).pipe(Effect.mapError(fromRedis("delete_queue", queue)))
    yield* redis.send("SREM", keys.registry, queue, dlq).pipe(Effect.mapError(fromRedis("delete_queue", queue)))
    keys.forget(queue)
    keys.forget(dlq)
  })

  const queueExists = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    return (yield* redis.send<number>("EXISTS", keys.of(queue).stream).pipe(Effect.mapError(fromRedis("queue_exists", queue)))) === 1
  })

  const listQueues = Effect.gen(function*() {
    const names = yield* redis.send<ReadonlyArray<string>>("SMEMBERS", keys.registry).pipe(Effect.mapError(fromRedis("list_queues")))
    const found: Array<QueueName.QueueName> = []
    for (const name of names) {
      const queue = yield* Effect.option(QueueName.make(name))
      if (queue._tag === "Some" && (yield* queueExists(queue.value))) found.push(queue.value)
    }
    return found.sort()
  })

  const purgeQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    const removed = yield* redis.eval(Scripts.purge)(keys.of(queue), group).pipe(Effect.mapError(fromRedis("purge", queue)))
    if (removed < 0) return yield* Effect.fail(queueNotFound(queue))
    return removed
  })

  const stats = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    const counts = yield* redis.eval(Scripts.stats)(keys.of(queue), keys.of(QueueName.deadLetter(queue)), group).pipe(
      Effect.mapError(fromRedis("stats", queue))
    )
    if (counts[0]! < 0) return yield* Effect.fail(queueNotFound(queue))
    const [depth, visible, inFlight, delayed, oldestAgeMs, deadLettered] = counts as [number, number, number, number, number, number]
    return {
      queue,
      depth,
      visible,
      inFlight,
      delayed,
      deadLettered,
      ...(oldestAgeMs < 0 ? {} : { oldestAgeMs })
    } satisfies Messaging.QueueStats
  })

  return { ensureQueue, deleteQueue, queueExists, listQueues, purgeQueue, stats }
}
