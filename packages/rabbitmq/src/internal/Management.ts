/**
 * Declarations, checks, purges and deletes on one channel of their own. A 404
 * (or any channel error) closes an AMQP channel and fails whatever else was
 * pending on it, so operations take turns and the channel is reopened for
 * the next one: a missing queue never poisons publishing or consuming.
 */
import type amqp from "amqplib"
import { Effect, Semaphore } from "effect"
import type { MessagingError, QueueName } from "@conveyor/core"
import * as Channel from "./Channel.ts"
import type { Connection } from "./Connection.ts"
import { fromAmqp } from "./errors.ts"
import type { Link } from "./Link.ts"
import * as Topology from "../Topology.ts"

export const declareQueue = async (ch: amqp.Channel, queue: QueueName.QueueName, kind: Topology.QueueKind) => {
  const exchange = Topology.deadLetterExchange(queue)
  const dlq = Topology.deadLetterQueue(queue)
  await ch.assertExchange(exchange, "fanout", { durable: true })
  await ch.assertQueue(dlq, { durable: true, arguments: Topology.deadLetterQueueArguments(kind) })
  await ch.bindQueue(dlq, exchange, "")
  await ch.assertQueue(queue, { durable: true, arguments: Topology.queueArguments(queue, kind) })
}

/** Declarations on a link nobody else uses yet (topology after a reconnect). */
export const onLink = <A>(link: Link, f: (ch: amqp.Channel) => Promise<A>) =>
  Effect.acquireUseRelease(
    Channel.open(link, Channel.plain),
    (ch) => Effect.tryPromise({ try: () => f(ch.raw), catch: fromAmqp("redeclare") }),
    Channel.close
  )

export const make = (connection: Connection) => {
  const channel = Channel.reopening(connection, (link) => Channel.open(link, Channel.plain))
  const turn = Semaphore.makeUnsafe(1)

  const run = <A>(
    operation: string,
    queue: string | undefined,
    f: (ch: amqp.Channel) => Promise<A>
  ): Effect.Effect<A, MessagingError.MessagingError> =>
    turn.withPermits(1)(
      Effect.flatMap(channel.get, (ch) => Effect.tryPromise({ try: () => f(ch.raw), catch: fromAmqp(operation, queue) }))
    )

  /** `undefined` when the queue does not exist. */
  const check = (queue: string) =>
    run("queue.check", queue, (ch) => ch.checkQueue(queue)).pipe(
      Effect.map((ok): amqp.Replies.AssertQueue | undefined => ok),
      Effect.catchTag("QueueNotFound", () => Effect.succeed(undefined))
    )

  return { run, check }
}

export type Management = ReturnType<typeof make>
