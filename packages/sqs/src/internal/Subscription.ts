/**
 * `subscribe` as long polling: per queue, a loop of ReceiveMessage calls that
 * wait up to `waitSeconds` and return as soon as a message arrives, emitting
 * each claimed message as a `Message` delivery. SQS has no push; this is the
 * closest it comes, and it needs no fallback poll: every poll sees the whole
 * backlog, so nothing sent before or during an outage is missed.
 *
 * Releasing on interruption. A long poll cannot be called off safely, so each
 * poll runs in the layer's fiber set (Receiver.outliving): an interrupted
 * subscription stops waiting for it at once and leaves a fiber that makes
 * whatever it brings back visible again. What the
 * subscription claimed and its reader has not pulled yet (buffered, or being
 * handed over) goes back at once when it ends; what the reader pulled is the
 * reader's to settle, after the end too (DESIGN §3, `subscribe`).
 */
import { Durations, type Message, MessageNotification, type Messaging, type MessagingError, type QueueName } from "@conveyor/core"
import { Duration, Effect, Queue, Schedule, Stream } from "effect"
import { maxBatch } from "./limits.ts"
import type { Request } from "./Receiver.ts"

export interface Deps {
  readonly receive: (request: Request) => Effect.Effect<ReadonlyArray<Message.QueuedMessage>, MessagingError.MessagingError>
  readonly urlOf: (queue: QueueName.QueueName) => Effect.Effect<string, MessagingError.MessagingError>
  /** Makes claimed messages visible again at once. */
  readonly release: (messages: ReadonlyArray<Message.QueuedMessage>) => Effect.Effect<void>
  /** Runs a long poll in the layer's fibers, which outlive the subscription (Receiver.outliving). */
  readonly outliving: (
    poll: Effect.Effect<ReadonlyArray<Message.QueuedMessage>, MessagingError.MessagingError>
  ) => Effect.Effect<ReadonlyArray<Message.QueuedMessage>, MessagingError.MessagingError>
  /** Reports on `pushHealth` that a poll could not reach the endpoint; `receive` reports the recovery (internal/Health). */
  readonly degraded: (error: MessagingError.MessagingError) => Effect.Effect<void>
  /** Completes once push health is not `Degraded`: some call reached the endpoint again. */
  readonly recovered: Effect.Effect<void>
  readonly waitSeconds: number
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  readonly defaultPrefetch: number
}

export const subscribe = (
  deps: Deps,
  queues: ReadonlyArray<QueueName.QueueName>,
  options: Messaging.SubscribeOptions
): Stream.Stream<MessageNotification.MessageNotification, MessagingError.MessagingError> =>
  Stream.unwrap(Effect.gen(function*() {
    const prefetch = Math.max(1, Math.floor(options.prefetch ?? deps.defaultPrefetch))
    const visibilityMs = Durations.millis(options.visibilityTimeout)
    const out = yield* Queue.bounded<MessageNotification.MessageNotification, MessagingError.MessagingError>(prefetch)
    // Added first, so it runs last: after the pollers stopped, what nobody pulled goes back.
    yield* Effect.addFinalizer(() =>
      Queue.clear(out).pipe(
        Effect.flatMap((held) => deps.release(held.flatMap((n) => n._tag === "Message" ? [n.message] : []))),
        Effect.ignore
      )
    )

    // What fits goes in at once; the rest one at a time as the reader makes room.
    const handOver = (messages: ReadonlyArray<Message.QueuedMessage>) =>
      Effect.suspend(() => {
        const deliveries = messages.map((message) => MessageNotification.Message({ message }))
        let given = deliveries.length - Queue.offerAllUnsafe(out, deliveries).length
        return Effect.whileLoop({
          while: () => given < deliveries.length,
          body: () => Queue.offer(out, deliveries[given]!),
          step: () => given++
        }).pipe(Effect.onInterrupt(() => deps.release(messages.slice(given))))
      })

    const pollOnce = (queue: QueueName.QueueName) =>
      Effect.gen(function*() {
        const url = yield* deps.urlOf(queue)
        const request: Request = { queue, url, max: Math.min(prefetch, maxBatch), visibilityMs, waitSeconds: deps.waitSeconds }
        return yield* deps.outliving(deps.receive(request))
      })

    // While the endpoint is out, a poll waits the reconnect delay before it tries again, or less:
    // once any call (a send, the consumer's receive) reached the endpoint, pushHealth says
    // Reconnected and the consumer stops its fast poll, so the subscription must poll at once.
    const reconnect = Schedule.modifyDelay(deps.reconnect, ({ duration }) =>
      Effect.as(Effect.raceFirst(Effect.sleep(duration), deps.recovered), Duration.zero))

    const pollLoop = (queue: QueueName.QueueName) =>
      pollOnce(queue).pipe(
        Effect.tapError((error) => error._tag === "ConnectionError" ? deps.degraded(error) : Effect.void),
        Effect.retry({ schedule: reconnect, while: (error) => error._tag === "ConnectionError" }),
        Effect.flatMap(handOver),
        // The next poll after one scheduler turn: the fibers the hand-over woke (the reader, the
        // consumer's worker) run first. Building and signing an SDK request costs about a
        // millisecond of CPU, which otherwise runs before the handler of the message just handed
        // over (idle send → handler p50 fell from ≈ 2.4 to ≈ 0.3 ms after the poll's answer).
        Effect.andThen(Effect.yieldNow),
        Effect.forever,
        Effect.catch((error) => Queue.fail(out, error))
      )

    // SQS answers at most 10 per call: enough concurrent polls per queue to fill the prefetch.
    const pollers = Math.ceil(prefetch / maxBatch)
    for (const queue of queues) {
      for (let i = 0; i < pollers; i++) yield* Effect.forkScoped(pollLoop(queue))
    }
    return Stream.fromQueue(out)
  }))
