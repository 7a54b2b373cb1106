/**
 * Queue management and the queue-URL cache. Every SQS call but CreateQueue
 * and GetQueueUrl names its queue by URL, so a URL is resolved once and kept
 * (Effect's `Cache`; failed look-ups are not kept, so a queue created later
 * is found). A queue deleted through this layer is forgotten at once; one
 * deleted elsewhere is forgotten on the first `QueueDoesNotExist`.
 */
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  type QueueAttributeName,
  type SQSClient
} from "@aws-sdk/client-sqs"
import { type MessagingError, QueueName } from "@conveyor/core"
import { Cache, Duration, Effect, Exit } from "effect"
import { call } from "./client.ts"
import { queueNotFound } from "./errors.ts"

export interface QueuesOptions {
  readonly maxBytes: number
  /** RedrivePolicy's maxReceiveCount: SQS dead-letters a message received this many times unsettled. */
  readonly maxReceiveCount: number
}

export interface Counts {
  readonly visible: number
  readonly inFlight: number
  readonly delayed: number
}

/** Retention of a message, in seconds: SQS's maximum, 14 days (its default is 4). */
const retentionSeconds = 14 * 24 * 60 * 60
const cacheCapacity = 10_000

const count = (attributes: Partial<Record<string, string>> | undefined, name: string) => Number(attributes?.[name] ?? 0)

export const make = (client: SQSClient, options: QueuesOptions) =>
  Effect.gen(function*() {
    const lookUp = (queue: QueueName.QueueName) =>
      call("GetQueueUrl", queue, (abortSignal) => client.send(new GetQueueUrlCommand({ QueueName: queue }), { abortSignal })).pipe(
        Effect.flatMap((output) =>
          output.QueueUrl === undefined ? Effect.fail(queueNotFound(queue)) : Effect.succeed(output.QueueUrl)
        )
      )
    const urls = yield* Cache.makeWith(lookUp, {
      capacity: cacheCapacity,
      timeToLive: (exit) => Exit.isSuccess(exit) ? Duration.infinity : Duration.zero
    })

    /** The URL of `queue`; a `QueueNotFound` from the server forgets a cached one. */
    const urlOf = (queue: QueueName.QueueName) => Cache.get(urls, queue)

    /** Runs `f` with the queue's URL, forgetting the URL when the queue turns out to be gone. */
    const withUrl = <A>(queue: QueueName.QueueName, f: (url: string) => Effect.Effect<A, MessagingError.MessagingError>) =>
      Effect.flatMap(urlOf(queue), f).pipe(
        Effect.tapError((error) => error._tag === "QueueNotFound" ? Cache.invalidate(urls, queue) : Effect.void)
      )

    const create = (queue: QueueName.QueueName, attributes: Record<string, string>) =>
      call("CreateQueue", queue, (abortSignal) =>
        client.send(new CreateQueueCommand({ QueueName: queue, Attributes: attributes }), { abortSignal })).pipe(
          Effect.flatMap((output) =>
            output.QueueUrl === undefined ? Effect.fail(queueNotFound(queue)) : Effect.succeed(output.QueueUrl)
          ),
          Effect.tap((url) => Cache.set(urls, queue, url))
        )

    const attributesOf = (queue: QueueName.QueueName, url: string, names: ReadonlyArray<QueueAttributeName>) =>
      call("GetQueueAttributes", queue, (abortSignal) =>
        client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...names] }), { abortSignal })).pipe(
          Effect.map((output) => output.Attributes ?? {})
        )

    const base = {
      MaximumMessageSize: String(options.maxBytes),
      MessageRetentionPeriod: String(retentionSeconds)
    }

    /** The queue and its dead-letter queue, bound by a RedrivePolicy. */
    const ensure = (queue: QueueName.QueueName) =>
      Effect.gen(function*() {
        const dlq = QueueName.deadLetter(queue)
        const dlqUrl = yield* create(dlq, base)
        const { QueueArn } = yield* attributesOf(dlq, dlqUrl, ["QueueArn"])
        yield* create(queue, {
          ...base,
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: QueueArn, maxReceiveCount: options.maxReceiveCount })
        })
      })

    const deleteOne = (queue: QueueName.QueueName) =>
      withUrl(queue, (url) =>
        call("DeleteQueue", queue, (abortSignal) => client.send(new DeleteQueueCommand({ QueueUrl: url }), { abortSignal }))).pipe(
          Effect.ensuring(Cache.invalidate(urls, queue)),
          Effect.catchTag("QueueNotFound", () => Effect.void),
          Effect.asVoid
        )

    /** Deletes the queue and its dead-letter queue; a queue already gone is not an error. */
    const remove = (queue: QueueName.QueueName) =>
      Effect.andThen(deleteOne(queue), deleteOne(QueueName.deadLetter(queue)))

    const exists = (queue: QueueName.QueueName) =>
      lookUp(queue).pipe(
        Effect.tap((url) => Cache.set(urls, queue, url)),
        Effect.as(true),
        Effect.catchTag("QueueNotFound", () => Effect.succeed(false))
      )

    /** Every queue of the account and region whose name is a valid queue name. */
    const list = Effect.gen(function*() {
      const found: Array<QueueName.QueueName> = []
      let nextToken: string | undefined
      do {
        const token = nextToken
        const page = yield* call("ListQueues", undefined, (abortSignal) =>
          client.send(new ListQueuesCommand({ MaxResults: 1000, ...(token === undefined ? {} : { NextToken: token }) }), {
            abortSignal
          }))
        for (const url of page.QueueUrls ?? []) {
          const name = url.slice(url.lastIndexOf("/") + 1)
          if (QueueName.is(name)) found.push(name)
        }
        nextToken = page.NextToken
      } while (nextToken !== undefined)
      return found.sort()
    })

    const counts = (queue: QueueName.QueueName): Effect.Effect<Counts, MessagingError.MessagingError> =>
      withUrl(queue, (url) =>
        attributesOf(queue, url, [
          "ApproximateNumberOfMessages",
          "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed"
        ])).pipe(
          Effect.map((attributes) => ({
            visible: count(attributes, "ApproximateNumberOfMessages"),
            inFlight: count(attributes, "ApproximateNumberOfMessagesNotVisible"),
            delayed: count(attributes, "ApproximateNumberOfMessagesDelayed")
          }))
        )

    /** Empties the queue; returns how many messages it held just before (SQS's approximate counts). */
    const purge = (queue: QueueName.QueueName) =>
      Effect.gen(function*() {
        const before = yield* counts(queue)
        yield* withUrl(queue, (url) =>
          call("PurgeQueue", queue, (abortSignal) => client.send(new PurgeQueueCommand({ QueueUrl: url }), { abortSignal })))
        return before.visible + before.inFlight + before.delayed
      })

    return { urlOf, withUrl, ensure, remove, exists, list, counts, purge }
  })

export type Queues = Effect.Success<ReturnType<typeof make>>
