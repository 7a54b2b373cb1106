/**
 * `receive` over basic.get, on one channel per queue: a 404 on one queue
 * closes only that queue's channel and leaves the others' claims alone.
 */
import { Effect } from "effect"
import type { Message, QueueName } from "@conveyor/core"
import * as Channel from "./Channel.ts"
import * as Codec from "./Codec.ts"
import type { Connection } from "./Connection.ts"
import type { Deliveries } from "./Deliveries.ts"
import { fromAmqp } from "./errors.ts"

export const make = (connection: Connection, deliveries: Deliveries) =>
  Effect.gen(function*() {
    const pullers = new Map<QueueName.QueueName, ReturnType<typeof Channel.reopening>>()
    const pullerOf = (queue: QueueName.QueueName) => {
      let puller = pullers.get(queue)
      if (puller === undefined) {
        puller = Channel.reopening(connection, (link) => Channel.open(link, Channel.plain, deliveries.forgetChannel))
        pullers.set(queue, puller)
      }
      return puller
    }
    yield* Effect.addFinalizer(() => Effect.forEach(pullers.values(), (puller) => puller.close, { discard: true }))

    /** Up to `max` messages, each tracked with its deadline as it is taken. */
    const claim = (queue: QueueName.QueueName, visibilityMs: number, max: number) =>
      Effect.suspend(() => {
        const claimed: Array<Message.QueuedMessage> = []
        // One basic.get and its tracking happen together: an interruption never strands an untracked claim.
        const claimOne = (channel: Channel.Channel) =>
          Effect.tryPromise({ try: () => channel.raw.get(queue, { noAck: false }), catch: fromAmqp("basic.get", queue) })
            .pipe(
              Effect.flatMap((got) => {
                if (got === false) return Effect.succeed(false)
                const body = Codec.payload(got)
                if (body === undefined) {
                  channel.raw.nack(got, false, false)
                  return Effect.as(Effect.logWarning(`Dead-lettered a non-JSON message from queue ${queue}`), true)
                }
                const { deadline, receipt, sentAt } = deliveries.track(
                  channel,
                  queue,
                  Codec.messageId(got),
                  got,
                  Codec.receiveCount(got),
                  visibilityMs
                )
                claimed.push(Codec.toQueued(queue, got, body, receipt, deadline, sentAt))
                return Effect.succeed(true)
              }),
              Effect.uninterruptible
            )
        return Effect.gen(function*() {
          const channel = yield* pullerOf(queue).get
          while (claimed.length < max && (yield* claimOne(channel))) {}
          return claimed as ReadonlyArray<Message.QueuedMessage>
        }).pipe(
          // Claims the caller will never see go straight back.
          Effect.onInterrupt(() =>
            Effect.forEach(claimed, (message) => Effect.ignore(deliveries.release(message.receipt)), { discard: true })
          )
        )
      })

    /** Closes the queue's channel (its queue is gone). */
    const close = (queue: QueueName.QueueName) =>
      Effect.suspend(() => {
        const puller = pullers.get(queue)
        pullers.delete(queue)
        return puller === undefined ? Effect.void : puller.close
      })

    return { claim, close }
  })

export type Pull = Effect.Success<ReturnType<typeof make>>
