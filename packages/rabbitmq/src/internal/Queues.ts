/**
 * Queue administration over the management channel. AMQP 0-9-1 cannot list
 * queues, so `listQueues` answers from the queues this layer ensured (with
 * their dead-letter queues) that still exist; `stats` counts what this layer
 * knows: the deliveries it holds unacked and the delay queues it declared.
 */
import { Effect } from "effect"
import { type Messaging, QueueName } from "@conveyor/core"
import type { DelayRoutes } from "./DelayRoutes.ts"
import type { Deliveries } from "./Deliveries.ts"
import { queueNotFound } from "./errors.ts"
import * as Management from "./Management.ts"
import type { Pull } from "./Pull.ts"
import * as Topology from "../Topology.ts"

export interface QueuesDeps {
  readonly management: Management.Management
  readonly routes: DelayRoutes
  readonly deliveries: Deliveries
  readonly pull: Pull
  /** Queues ensured through this layer, redeclared after every reconnect. */
  readonly ensured: Map<QueueName.QueueName, Topology.QueueKind>
  readonly defaultKind: Topology.QueueKind
}

export const make = ({ defaultKind, deliveries, ensured, management, pull, routes }: QueuesDeps) => {
  const ensureQueue = Effect.fnUntraced(function*(name: QueueName.QueueName, opts?: Messaging.QueueOptions) {
    const queue = yield* QueueName.ensurable(yield* QueueName.make(name))
    const kind = opts?.kind ?? defaultKind
    yield* management.run("queue.declare", queue, (ch) => Management.declareQueue(ch, queue, kind))
    ensured.set(queue, kind)
  })

  const deleteQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    const delays = routes.known(queue)
    yield* management.run("queue.delete", queue, async (ch) => {
      await ch.deleteQueue(queue)
      for (const name of delays) await ch.deleteQueue(name)
      await ch.deleteQueue(Topology.deadLetterQueue(queue))
      await ch.deleteExchange(Topology.deadLetterExchange(queue))
    })
    ensured.delete(queue)
    routes.forget(queue)
    deliveries.forgetQueue(queue)
    yield* pull.close(queue)
  })

  const queueExists = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    return (yield* management.check(queue)) !== undefined
  })

  const listQueues = Effect.gen(function*() {
    const found: Array<QueueName.QueueName> = []
    for (const queue of [...ensured.keys()]) {
      if ((yield* management.check(queue)) === undefined) {
        ensured.delete(queue)
        continue
      }
      found.push(queue)
      const dlq = Topology.deadLetterQueue(queue)
      if ((yield* management.check(dlq)) !== undefined) found.push(dlq)
    }
    return found.sort()
  })

  const purgeQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    let removed = (yield* management.run("queue.purge", queue, (ch) => ch.purgeQueue(queue))).messageCount
    for (const delayQueue of routes.known(queue)) {
      if ((yield* management.check(delayQueue)) === undefined) continue
      removed += (yield* management.run("queue.purge", delayQueue, (ch) => ch.purgeQueue(delayQueue))).messageCount
    }
    return removed
  })

  const stats = Effect.fnUntraced(function*(name: QueueName.QueueName) {
    const queue = yield* QueueName.make(name)
    const main = yield* management.check(queue)
    if (main === undefined) return yield* Effect.fail(queueNotFound(queue))
    let delayed = 0
    for (const delayQueue of routes.known(queue)) {
      delayed += (yield* management.check(delayQueue))?.messageCount ?? 0
    }
    const deadLettered = (yield* management.check(Topology.deadLetterQueue(queue)))?.messageCount ?? 0
    const inFlight = deliveries.inFlight(queue)
    return {
      queue,
      depth: main.messageCount + inFlight + delayed,
      visible: main.messageCount,
      inFlight,
      delayed,
      deadLettered
    } satisfies Messaging.QueueStats
  })

  return { ensureQueue, deleteQueue, queueExists, listQueues, purgeQueue, stats }
}
