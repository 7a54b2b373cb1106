/**
 * Sending through `SendMessageBatch`: concurrent sends to one queue, and the
 * messages of one `sendBatch`, share calls of at most 10 entries whose
 * bodies and attributes together stay within the size limit. Each entry's
 * outcome goes to its own message, so a partial batch failure is reported
 * per message and a message that was refused is never reported as sent.
 */
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from "@aws-sdk/client-sqs"
import { Batching, type Message, MessagingError, type QueueName } from "@conveyor/core"
import { Effect, Exit } from "effect"
import { call } from "./client.ts"
import type { Encoded } from "./codec.ts"
import { provider } from "./errors.ts"
import { maxBatch } from "./limits.ts"

export interface Outgoing {
  readonly queue: QueueName.QueueName
  readonly url: string
  readonly message: Encoded
  readonly delaySeconds: number
}

type Result = Exit.Exit<Message.MessageId, MessagingError.MessagingError>

const maxInFlight = 4

/** Consecutive groups whose total size stays within `maxBytes` (each message alone already does). */
const bySize = (items: ReadonlyArray<Outgoing>, maxBytes: number): ReadonlyArray<ReadonlyArray<Outgoing>> => {
  const groups: Array<Array<Outgoing>> = []
  let current: Array<Outgoing> = []
  let bytes = 0
  for (const item of items) {
    if (current.length > 0 && bytes + item.message.bytes > maxBytes) {
      groups.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += item.message.bytes
  }
  if (current.length > 0) groups.push(current)
  return groups
}

const entry = (item: Outgoing, i: number): SendMessageBatchRequestEntry => ({
  Id: String(i),
  MessageBody: item.message.body,
  ...(Object.keys(item.message.attributes).length === 0 ? {} : { MessageAttributes: item.message.attributes }),
  ...(item.delaySeconds === 0 ? {} : { DelaySeconds: item.delaySeconds })
})

export const make = (client: SQSClient, maxBytes: number) => {
  const sendGroup = (items: ReadonlyArray<Outgoing>): Effect.Effect<ReadonlyArray<Result>, MessagingError.MessagingError> =>
    call("SendMessageBatch", items[0]!.queue, (abortSignal) =>
      client.send(new SendMessageBatchCommand({ QueueUrl: items[0]!.url, Entries: items.map(entry) }), { abortSignal })).pipe(
        Effect.map((output) => {
          const sent = new Map((output.Successful ?? []).map((ok) => [ok.Id, ok.MessageId]))
          const failed = new Map((output.Failed ?? []).map((failure) => [failure.Id, failure]))
          return items.map((item, i): Result => {
            const id = sent.get(String(i))
            if (id !== undefined) return Exit.succeed(id)
            const failure = failed.get(String(i))
            return Exit.fail(
              new MessagingError.ProviderError({
                provider,
                operation: "SendMessageBatch",
                message: `SQS refused a message for ${item.queue}: ${failure?.Code ?? "no result"}: ${failure?.Message ?? ""}` +
                  (failure?.SenderFault === false ? " (a server fault: sending it again may work)" : "")
              })
            )
          })
        })
      )

  return Batching.make<Outgoing, Message.MessageId, MessagingError.MessagingError>({
    key: (item) => `send:${item.url}`,
    maxBatchSize: maxBatch,
    maxInFlight,
    run: (items) =>
      Effect.map(Effect.forEach(bySize(items, maxBytes), sendGroup), (groups) => groups.flat())
  })
}

/** The ids of a batch in input order, or one error naming every message that was not sent and every one that was. */
export const collect = (
  queue: QueueName.QueueName,
  results: ReadonlyArray<Result>
): Effect.Effect<ReadonlyArray<Message.MessageId>, MessagingError.MessagingError> => {
  const failures = results.flatMap((result, i) => Exit.isFailure(result) ? [{ i, result }] : [])
  if (failures.length === 0) return Effect.succeed(results.map((result) => (result as Exit.Success<Message.MessageId>).value))
  const first = Exit.findErrorOption(failures[0]!.result)
  if (failures.length === results.length && first._tag === "Some") return Effect.fail(first.value)
  const lines = results.map((result, i) =>
    Exit.isSuccess(result)
      ? `#${i}: sent as ${result.value}`
      : `#${i}: not sent (${Exit.findErrorOption(result).pipe((e) => e._tag === "Some" ? e.value.message : "interrupted")})`
  )
  return Effect.fail(
    new MessagingError.ProviderError({
      provider,
      operation: "sendBatch",
      message: `SQS sent ${results.length - failures.length} of ${results.length} messages for ${queue}:\n${lines.join("\n")}`
    })
  )
}
