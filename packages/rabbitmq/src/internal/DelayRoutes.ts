/**
 * Where a delayed message goes: AMQP has no per-message delay, so a message
 * due after `d` is published to the delay queue of `d` (Topology), which
 * dead-letters into the queue when its TTL runs out. Delay queues are
 * declared when first needed and declared again at most once a minute, so one
 * deleted by hand comes back without a declaration on every send.
 */
import { Clock, Duration, Effect } from "effect"
import { Durations, type MessagingError, type QueueName } from "@conveyor/core"
import { queueNotFound } from "./errors.ts"
import type { Management } from "./Management.ts"
import * as Topology from "../Topology.ts"

const redeclareAfterMs = 60_000

export const make = (management: Management) => {
  /** Delay queues in use per queue, with when each was last declared. */
  const byQueue = new Map<QueueName.QueueName, Map<string, number>>()

  const delayed = (queue: QueueName.QueueName, ms: number) =>
    Effect.gen(function*() {
      const delayMs = Topology.quantizeDelay(ms)
      const name = Topology.delayQueue(queue, delayMs)
      const known = byQueue.get(queue) ?? new Map<string, number>()
      const declaredAt = known.get(name)
      if (declaredAt !== undefined && (yield* Clock.currentTimeMillis) - declaredAt < redeclareAfterMs) return name
      // A delay queue for a missing queue would dead-letter into nothing.
      if ((yield* management.check(queue)) === undefined) return yield* Effect.fail(queueNotFound(queue))
      yield* management.run("queue.declare", name, (ch) =>
        ch.assertQueue(name, { durable: true, arguments: Topology.delayQueueArguments(queue, delayMs) }))
      known.set(name, yield* Clock.currentTimeMillis)
      byQueue.set(queue, known)
      return name
    })

  /** The routing key for a message due after `delay`: the queue itself, or its delay queue. */
  const routeFor = (
    queue: QueueName.QueueName,
    delay: Duration.Input | undefined
  ): Effect.Effect<string, MessagingError.MessagingError> => {
    const ms = Durations.millis(delay)
    return ms <= 0 ? Effect.succeed(queue) : delayed(queue, ms)
  }

  return {
    routeFor,
    /** The delay queues of `queue` this layer declared. */
    known: (queue: QueueName.QueueName): ReadonlyArray<string> => [...(byQueue.get(queue)?.keys() ?? [])],
    forget: (queue: QueueName.QueueName) => void byQueue.delete(queue)
  }
}

export type DelayRoutes = ReturnType<typeof make>
