/**
 * `subscribe`: one channel per subscription, basic.consume on each queue with
 * prefetch = the subscriber's demand (per queue), every delivery emitted as a
 * `Message` and tracked until it is acked or nacked — never acked on
 * hand-off. When the channel or connection is lost the session is opened
 * again on the next link (the broker has requeued what was unacked), so the
 * stream survives reconnects. A queue deleted under the subscription (the
 * broker cancels the consumer) ends the stream with `QueueNotFound`; so does
 * resuming on a queue that no longer exists.
 */
import type amqp from "amqplib"
import { Deferred, Effect, Option, Queue, type Schedule, Stream } from "effect"
import { Durations, MessageNotification, type Messaging, type MessagingError, type QueueName } from "@conveyor/core"
import * as Channel from "./Channel.ts"
import * as Codec from "./Codec.ts"
import type { Connection } from "./Connection.ts"
import type { Deliveries } from "./Deliveries.ts"
import { fromAmqp, queueNotFound } from "./errors.ts"

export interface SubscriptionDeps {
  readonly connection: Connection
  readonly deliveries: Deliveries
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  readonly defaultPrefetch: number
}

export const subscribe = (
  deps: SubscriptionDeps,
  queues: ReadonlyArray<QueueName.QueueName>,
  options: Messaging.SubscribeOptions
): Stream.Stream<MessageNotification.MessageNotification, MessagingError.MessagingError> =>
  Stream.callback<MessageNotification.MessageNotification, MessagingError.MessagingError>((out) =>
    Effect.gen(function*() {
      const visibilityMs = Durations.millis(options.visibilityTimeout)
      const prefetch = Math.max(1, options.prefetch ?? deps.defaultPrefetch)
      const poison = yield* Queue.unbounded<string>()
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(poison), (text) => Effect.logWarning(text))))

      const deliver = (channel: Channel.Channel, queue: QueueName.QueueName, message: amqp.ConsumeMessage) => {
        const body = Codec.payload(message)
        if (body === undefined) {
          // Not JSON (another publisher's bytes): parked in the dead-letter queue, never lost, never retried.
          channel.raw.nack(message, false, false)
          Queue.offerUnsafe(poison, `Dead-lettered a non-JSON message from queue ${queue}`)
          return
        }
        const { deadline, receipt } = deps.deliveries.track(
          channel,
          queue,
          Codec.messageId(message),
          message,
          Codec.receiveCount(message),
          visibilityMs
        )
        Queue.offerUnsafe(out, MessageNotification.Message({ message: Codec.toQueued(queue, message, body, receipt, deadline) }))
      }

      const session = Effect.gen(function*() {
        const link = yield* deps.connection.current
        const channel = yield* Effect.acquireRelease(
          Channel.open(link, Channel.plain, deps.deliveries.forgetChannel),
          Channel.close
        )
        yield* Effect.tryPromise({ try: () => channel.raw.prefetch(prefetch), catch: fromAmqp("basic.qos") })
        const cancelled = Deferred.makeUnsafe<QueueName.QueueName>()
        for (const queue of queues) {
          yield* Effect.tryPromise({
            try: () =>
              channel.raw.consume(queue, (message) =>
                message === null
                  ? Deferred.doneUnsafe(cancelled, Effect.succeed(queue))
                  : deliver(channel, queue, message)),
            catch: fromAmqp("basic.consume", queue)
          })
        }
        const ended = yield* Effect.raceFirst(
          Effect.map(Deferred.await(cancelled), Option.some),
          Effect.as(Deferred.await(channel.closed), Option.none())
        )
        if (Option.isSome(ended)) return yield* Effect.fail(queueNotFound(ended.value))
      }).pipe(Effect.scoped)

      yield* session.pipe(
        Effect.retry({ schedule: deps.reconnect, while: (error) => error._tag === "ConnectionError" }),
        Effect.forever,
        Effect.catch((error) => Queue.fail(out, error)),
        Effect.forkScoped
      )
    })
  )
