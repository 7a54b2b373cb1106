/**
 * One ReceiveMessage call turned into claimed `QueuedMessage`s, for `receive`
 * (no wait, or the caller's `waitTime`) and the long-poll subscription (a wait
 * of up to 20 s); `outliving` runs a long poll its caller may abandon.
 *
 * Each receipt's deadline is the requested visibility timeout counted from
 * when the claim can have started at the earliest: the request's start, or,
 * for a long poll that waited, one second before its answer (the server
 * claims the messages just before answering). It lapses here no later than
 * on the server, give or take that second on a slow network.
 */
import { type Message as SqsMessage, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs"
import type { Message, MessagingError, QueueName } from "@conveyor/core"
import { Clock, Effect, Fiber, FiberSet } from "effect"
import { call } from "./client.ts"
import * as Codec from "./codec.ts"
import type { Holdings } from "./Holdings.ts"
import { visibilitySeconds } from "./limits.ts"

export interface Request {
  readonly queue: QueueName.QueueName
  readonly url: string
  /** 1 to 10. */
  readonly max: number
  readonly visibilityMs: number
  readonly waitSeconds: number
}

/** A message whose body is not JSON: it goes to the dead-letter queue, never to a handler. */
export type OnUndecodable = (queue: QueueName.QueueName, message: SqsMessage) => Effect.Effect<void>

const answerMarginMs = 1_000

export const make = (client: SQSClient, holdings: Holdings, onUndecodable: OnUndecodable) =>
(request: Request): Effect.Effect<ReadonlyArray<Message.QueuedMessage>, MessagingError.MessagingError> =>
  Effect.gen(function*() {
    const seconds = yield* visibilitySeconds("receive")(request.visibilityMs)
    const startedAt = yield* Clock.currentTimeMillis
    const output = yield* call("ReceiveMessage", request.queue, (abortSignal) =>
      client.send(
        new ReceiveMessageCommand({
          QueueUrl: request.url,
          MaxNumberOfMessages: request.max,
          VisibilityTimeout: seconds,
          WaitTimeSeconds: request.waitSeconds,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"]
        }),
        { abortSignal }
      ))
    const answeredAt = yield* Clock.currentTimeMillis
    const claimedFrom = Math.max(startedAt, answeredAt - answerMarginMs)
    const deadline = claimedFrom + request.visibilityMs
    const claimed: Array<Message.QueuedMessage> = []
    for (const message of output.Messages ?? []) {
      if (message.ReceiptHandle === undefined || message.MessageId === undefined) continue
      const payload = Codec.decodeBody(message.Body)
      if (payload === undefined) {
        yield* onUndecodable(request.queue, message)
        continue
      }
      const receipt = holdings.issue(request.queue, message.MessageId, {
        handle: message.ReceiptHandle,
        deadline,
        body: message.Body ?? "",
        attributes: message.MessageAttributes ?? {}
      }, answeredAt)
      claimed.push({
        queue: request.queue,
        id: message.MessageId,
        receipt,
        payload,
        headers: Codec.headersOf(message),
        receiveCount: Codec.receiveCountOf(message),
        enqueuedAt: Codec.sentAtOf(message, answeredAt),
        visibleUntil: new Date(deadline)
      })
    }
    return claimed
  })

/**
 * Runs a long poll so that its caller can be interrupted safely. A long poll cannot be called
 * off: the server may already have claimed messages for an answer nobody would read (aborting
 * the request leaves them invisible for a whole visibility timeout). So it runs in the layer's
 * fibers, outside the caller; an interrupted caller stops waiting at once and leaves a fiber
 * that makes whatever the poll brings back visible again.
 */
export const outliving = (
  fibers: FiberSet.FiberSet<unknown, unknown>,
  release: (messages: ReadonlyArray<Message.QueuedMessage>) => Effect.Effect<void>
) =>
(poll: Effect.Effect<ReadonlyArray<Message.QueuedMessage>, MessagingError.MessagingError>) =>
  Effect.flatMap(FiberSet.run(fibers, poll), (fiber) =>
    Fiber.join(fiber).pipe(
      Effect.onInterrupt(() => FiberSet.run(fibers, Fiber.join(fiber).pipe(Effect.flatMap(release), Effect.ignore)))
    ))
