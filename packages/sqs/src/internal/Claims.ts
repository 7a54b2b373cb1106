/**
 * Settling the claims this layer handed out: ack, nack (requeue, with a
 * delay, or to the dead-letter queue), extendVisibility, and the release of
 * claims nobody will handle. Each first takes the claim from the holdings
 * (a stale one is refused there, see Holdings), then settles it in a batch
 * (see Settlement).
 */
import { type Message as SqsMessage, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs"
import { Durations, type Message, type Messaging, type MessagingError, QueueName } from "@conveyor/core"
import { Clock, type Duration, Effect, type Schedule } from "effect"
import * as Client from "./client.ts"
import type * as Codec from "./codec.ts"
import { provider } from "./errors.ts"
import type * as Holdings from "./Holdings.ts"
import * as Limits from "./limits.ts"
import type { Queues } from "./Queues.ts"
import type { Settlement } from "./Settlement.ts"

export interface Deps {
  readonly client: SQSClient
  readonly queues: Queues
  readonly holdings: Holdings.Holdings
  readonly settlement: Settlement
  readonly reconnect: Schedule.Schedule<unknown, unknown>
}

export const make = ({ client, holdings, queues, reconnect, settlement }: Deps) =>
  Effect.gen(function*() {
    /** Puts a copy of a received message into the queue's dead-letter queue. */
    const copyToDeadLetter = (queue: QueueName.QueueName, body: string, attributes: Codec.Attributes) => {
      const dlq = QueueName.deadLetter(queue)
      return queues.withUrl(dlq, (url) =>
        Client.call("SendMessage", dlq, (abortSignal) =>
          client.send(
            new SendMessageCommand({
              QueueUrl: url,
              MessageBody: body,
              ...(Object.keys(attributes).length === 0 ? {} : { MessageAttributes: attributes })
            }),
            { abortSignal }
          )))
    }

    // Another producer's non-JSON body: dead-lettered as it is, never handed to a handler.
    const onUndecodable = (queue: QueueName.QueueName, message: SqsMessage) =>
      Effect.gen(function*() {
        yield* copyToDeadLetter(queue, message.Body ?? "", message.MessageAttributes ?? {})
        const receipt: Message.Receipt = { provider, queue, messageId: message.MessageId ?? "", token: undefined }
        const url = yield* queues.urlOf(queue)
        yield* settlement.delete({
          receipt,
          url,
          token: { handle: message.ReceiptHandle ?? "", deadline: 0, body: "", attributes: {} }
        })
        yield* Effect.logWarning(`Dead-lettered a non-JSON message ${message.MessageId} from queue ${queue}`)
      }).pipe(
        Effect.catch((error) => Effect.logWarning(`Could not dead-letter a non-JSON message from ${queue}: ${error.message}`))
      )

    const clock = yield* Effect.clockWith(Effect.succeed)

    /**
     * Runs a settlement of a held claim. An outage is ridden out while the claim
     * is held (a receipt handle outlives a connection; retrying it after the
     * claim lapsed could settle someone else's); a failure other than
     * staleness leaves the claim settleable.
     */
    const settling = <A>(
      receipt: Message.Receipt,
      operation: string,
      f: (token: Holdings.Token, url: string, queue: QueueName.QueueName) => Effect.Effect<A, MessagingError.MessagingError>
    ) =>
      Effect.gen(function*() {
        const queue = yield* QueueName.make(receipt.queue)
        const token = yield* holdings.beginSettle(receipt, operation)
        const attempt = queues.withUrl(queue, (url) => f(token, url, queue))
        const held = (error: MessagingError.MessagingError) =>
          error._tag === "ConnectionError" && clock.currentTimeMillisUnsafe() < holdings.deadlineOf(token)
        // Retries are set up only once the first try failed: nothing extra per settlement.
        return yield* attempt.pipe(
          Effect.catch((error) =>
            held(error) ? Effect.retry(attempt, { schedule: reconnect, while: held }) : Effect.fail(error)
          ),
          Effect.tapError((error) => error._tag === "StaleReceipt" ? Effect.void : Effect.sync(() => holdings.abandonSettle(token)))
        )
      })

    const requeue = (receipt: Message.Receipt, seconds: number) =>
      settling(receipt, "nack", (token, url) => settlement.changeVisibility({ receipt, url, token, seconds }))

    const release = (messages: ReadonlyArray<Message.QueuedMessage>) =>
      Effect.forEach(messages, (message) => Effect.ignore(requeue(message.receipt, 0)), {
        concurrency: "unbounded",
        discard: true
      })

    const ack = (receipt: Message.Receipt) =>
      settling(receipt, "ack", (token, url) => settlement.delete({ receipt, url, token }))

    /** Checks the claim with SQS (a stale handle is refused there), copies the message to the DLQ, then deletes it. */
    const deadLetter = (receipt: Message.Receipt) =>
      settling(receipt, "nack", (token, url, queue) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const seconds = Math.max(1, Math.ceil((token.deadline - now) / 1000))
          yield* settlement.changeVisibility({ receipt, url, token, seconds })
          yield* copyToDeadLetter(queue, token.body, token.attributes)
          yield* settlement.delete({ receipt, url, token })
        }))

    const nack = Effect.fnUntraced(function*(receipt: Message.Receipt, opts?: Messaging.NackOptions) {
      if (opts?.requeue === false) return yield* deadLetter(receipt)
      const seconds = yield* Limits.visibilitySeconds("nack")(opts?.delay)
      yield* requeue(receipt, seconds)
    })

    const extendVisibility = Effect.fnUntraced(function*(receipt: Message.Receipt, duration: Duration.Input) {
      const queue = yield* QueueName.make(receipt.queue)
      const seconds = yield* Limits.visibilitySeconds("extendVisibility")(duration)
      const token = yield* holdings.check(receipt, "extendVisibility")
      const from = yield* Clock.currentTimeMillis
      yield* queues.withUrl(queue, (url) => settlement.changeVisibility({ receipt, url, token, seconds }))
      holdings.extend(token, from + Durations.millis(duration))
    })

    return { onUndecodable, release, ack, nack, extendVisibility }
  })
