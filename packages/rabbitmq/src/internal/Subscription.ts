/**
 * `subscribe`: one channel per subscription, basic.consume on each queue with
 * prefetch = the subscriber's demand (per queue), every delivery emitted as a
 * `Message` and tracked until it is acked or nacked — never acked on
 * hand-off. When the subscription ends, its consumers are cancelled, the
 * deliveries it has not emitted go back at once, and the channel stays open
 * until the ones it emitted (the subscriber's) are settled or expire. When the channel or connection is lost the session is opened
 * again on the next link (the broker has requeued what was unacked), so the
 * stream survives reconnects. A queue deleted under the subscription (the
 * broker cancels the consumer) ends the stream with `QueueNotFound`; so does
 * resuming on a queue that no longer exists.
 */
import type amqp from "amqplib"
import { Deferred, Effect, Option, Queue, Schedule, type Scope, Stream } from "effect"
import { Durations, type Message, MessageNotification, type Messaging, type MessagingError, type QueueName } from "@conveyor/core"
import * as Channel from "./Channel.ts"
import * as Codec from "./Codec.ts"
import type { Connection } from "./Connection.ts"
import type { Deliveries } from "./Deliveries.ts"
import { fromAmqp, queueNotFound } from "./errors.ts"

export interface SubscriptionDeps {
  readonly connection: Connection
  readonly deliveries: Deliveries
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  /** Where an ended subscription's channel waits for its emitted deliveries to be settled. */
  readonly retiring: Scope.Scope
  readonly defaultPrefetch: number
}

/** Channels whose subscription ended: a late delivery goes straight back. */
const retired = new WeakSet<Channel.Channel>()

/**
 * The end of a subscription's channel: no more deliveries, the unemitted ones
 * back to the broker now, and the close once the subscriber has settled (or
 * the visibility sweep expired) what it was handed.
 */
const retire = (
  deps: SubscriptionDeps,
  channel: Channel.Channel,
  consumerTags: ReadonlyArray<string>,
  unemitted: Set<Message.Receipt>
) =>
  Effect.gen(function*() {
    retired.add(channel)
    if (!channel.open) return
    // Not awaited: a dying connection may never answer; deliveries still arriving are sent back on arrival.
    for (const tag of consumerTags) channel.raw.cancel(tag).catch(() => undefined)
    const unsent = [...unemitted]
    unemitted.clear()
    yield* Effect.forEach(unsent, (receipt) => Effect.ignore(deps.deliveries.release(receipt)), { discard: true })
    yield* Effect.sync(() => !channel.open || deps.deliveries.heldOn(channel) === 0).pipe(
      Effect.repeat({ until: (settled) => settled, schedule: Schedule.spaced("20 millis") }),
      Effect.andThen(Channel.close(channel)),
      Effect.forkIn(deps.retiring)
    )
  })

export const subscribe = (
  deps: SubscriptionDeps,
  queues: ReadonlyArray<QueueName.QueueName>,
  options: Messaging.SubscribeOptions
): Stream.Stream<MessageNotification.MessageNotification, MessagingError.MessagingError> =>
  Stream.suspend(() => {
    /** Deliveries offered to the stream and not pulled by the subscriber yet. */
    const unemitted = new Set<Message.Receipt>()
    return Stream.callback<MessageNotification.MessageNotification, MessagingError.MessagingError>((out) =>
      Effect.gen(function*() {
        const visibilityMs = Durations.millis(options.visibilityTimeout)
        const prefetch = Math.max(1, options.prefetch ?? deps.defaultPrefetch)
        const poison = yield* Queue.unbounded<string>()
        yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(poison), (text) => Effect.logWarning(text))))

        const deliver = (channel: Channel.Channel, queue: QueueName.QueueName, message: amqp.ConsumeMessage) => {
          if (retired.has(channel)) return channel.raw.nack(message, false, true)
          const body = Codec.payload(message)
          if (body === undefined) {
            // Not JSON (another publisher's bytes): parked in the dead-letter queue, never lost, never retried.
            channel.raw.nack(message, false, false)
            Queue.offerUnsafe(poison, `Dead-lettered a non-JSON message from queue ${queue}`)
            return
          }
          const { deadline, receipt, sentAt } = deps.deliveries.track(
            channel,
            queue,
            Codec.messageId(message),
            message,
            Codec.receiveCount(message),
            visibilityMs
          )
          unemitted.add(receipt)
          Queue.offerUnsafe(out, MessageNotification.Message({ message: Codec.toQueued(queue, message, body, receipt, deadline, sentAt) }))
        }

        const session = Effect.gen(function*() {
          const link = yield* deps.connection.current
          const consumerTags: Array<string> = []
          const channel = yield* Effect.acquireRelease(
            Channel.open(link, Channel.plain, deps.deliveries.forgetChannel),
            (channel) => retire(deps, channel, consumerTags, unemitted)
          )
          yield* Effect.tryPromise({ try: () => channel.raw.prefetch(prefetch), catch: fromAmqp("basic.qos") })
          const cancelled = Deferred.makeUnsafe<QueueName.QueueName>()
          for (const queue of queues) {
            const { consumerTag } = yield* Effect.tryPromise({
              try: () =>
                channel.raw.consume(queue, (message) =>
                  message === null
                    ? Deferred.doneUnsafe(cancelled, Effect.succeed(queue))
                    : deliver(channel, queue, message)),
              catch: fromAmqp("basic.consume", queue)
            })
            consumerTags.push(consumerTag)
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
    ).pipe(
      // Pulled: the subscriber's from here on.
      Stream.tap((n) => Effect.sync(() => n._tag === "Message" && unemitted.delete(n.message.receipt)))
    )
  })
