/**
 * Publishing through one confirm channel per link: a publish succeeds only
 * once the broker confirmed it. Messages are published `mandatory`, so one
 * for a queue that does not exist comes back (basic.return, which RabbitMQ
 * sends before the confirm) and fails with `QueueNotFound` instead of
 * vanishing. A batch is written in one go and awaited together.
 */
import type amqp from "amqplib"
import { Effect } from "effect"
import type { MessagingError, QueueName } from "@conveyor/core"
import * as Channel from "./Channel.ts"
import type { Connection } from "./Connection.ts"
import { fromAmqp, queueNotFound } from "./errors.ts"

export interface Outgoing {
  /** The queue the user named, for errors. */
  readonly queue: QueueName.QueueName
  /** Where it goes now: the queue itself or one of its delay queues. */
  readonly routingKey: string
  readonly body: Buffer
  readonly options: amqp.Options.Publish & { readonly messageId: string }
}

export const make = (connection: Connection) => {
  /** Per channel: message ids the broker returned, awaiting their confirm. */
  const returned = new WeakMap<amqp.ConfirmChannel, Map<string, number>>()
  const channel = Channel.reopening(connection, (link) =>
    Effect.tap(Channel.open(link, Channel.confirm), (ch) =>
      Effect.sync(() => {
        const counts = new Map<string, number>()
        returned.set(ch.raw, counts)
        ch.raw.on("return", (message: amqp.Message) => {
          const id = String(message.properties.messageId)
          counts.set(id, (counts.get(id) ?? 0) + 1)
        })
      })))

  const write = (ch: Channel.Channel<amqp.ConfirmChannel>, batch: ReadonlyArray<Outgoing>) =>
    Effect.callback<void, MessagingError.MessagingError>((resume) => {
      const counts = returned.get(ch.raw)!
      let pending = batch.length
      let failure: MessagingError.MessagingError | undefined
      const settle = (error: MessagingError.MessagingError | undefined) => {
        failure ??= error
        if (--pending === 0) resume(failure === undefined ? Effect.void : Effect.fail(failure))
      }
      for (const item of batch) {
        try {
          ch.raw.sendToQueue(item.routingKey, item.body, item.options, (err) => {
            const id = item.options.messageId
            const bounced = counts.get(id) ?? 0
            if (bounced > 0) {
              if (bounced === 1) counts.delete(id)
              else counts.set(id, bounced - 1)
              return settle(queueNotFound(item.queue))
            }
            settle(err ? fromAmqp("publish", item.queue)(err) : undefined)
          })
        } catch (err) {
          settle(fromAmqp("publish", item.queue)(err))
        }
      }
      ch.link.coalesce()
    })

  return {
    /** Publishes every item and waits for all their confirms. */
    publish: (batch: ReadonlyArray<Outgoing>): Effect.Effect<void, MessagingError.MessagingError> =>
      batch.length === 0 ? Effect.void : Effect.flatMap(channel.get, (ch) => write(ch, batch))
  }
}

export type Publisher = ReturnType<typeof make>
