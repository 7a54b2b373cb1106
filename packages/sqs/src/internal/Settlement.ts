/**
 * Settling deliveries in batches: concurrent acks of one queue share one
 * `DeleteMessageBatch`, concurrent requeues and extensions one
 * `ChangeMessageVisibilityBatch` (SQS takes at most 10 entries per call).
 * Each entry's outcome goes to its own caller: a stale handle fails only the
 * caller that held it.
 */
import {
  type BatchResultErrorEntry,
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type SQSClient
} from "@aws-sdk/client-sqs"
import { Batching, type Message, MessagingError, Receipts } from "@conveyor/core"
import { Effect, Exit } from "effect"
import { call } from "./client.ts"
import { isStaleEntry, provider } from "./errors.ts"
import type { Token } from "./Holdings.ts"
import { maxBatch } from "./limits.ts"

export interface Entry {
  readonly receipt: Message.Receipt
  readonly url: string
  readonly token: Token
}

export interface VisibilityEntry extends Entry {
  readonly seconds: number
}

export interface Settlement {
  readonly delete: (entry: Entry) => Effect.Effect<void, MessagingError.MessagingError>
  readonly changeVisibility: (entry: VisibilityEntry) => Effect.Effect<void, MessagingError.MessagingError>
}

/** Concurrent round trips per queue and operation: a busy queue settles in parallel. */
const maxInFlight = 4

const outcomes = (
  operation: string,
  entries: ReadonlyArray<Entry>,
  failed: ReadonlyArray<BatchResultErrorEntry> | undefined
): ReadonlyArray<Exit.Exit<void, MessagingError.MessagingError>> => {
  const failures = new Map((failed ?? []).map((entry) => [entry.Id, entry]))
  return entries.map((entry, i) => {
    const failure = failures.get(String(i))
    if (failure === undefined) return Exit.void
    if (isStaleEntry(failure.Code, failure.Message)) return Exit.fail(Receipts.stale(entry.receipt))
    return Exit.fail(
      new MessagingError.ProviderError({
        provider,
        operation,
        message: `SQS ${operation} refused message ${entry.receipt.messageId} on ${entry.receipt.queue}: ${failure.Code}: ${failure.Message ?? ""}`
      })
    )
  })
}

export const make = (client: SQSClient): Effect.Effect<Settlement> =>
  Effect.gen(function*() {
    const deleteBatched = yield* Batching.make<Entry, void, MessagingError.MessagingError>({
      key: (entry) => `delete:${entry.url}`,
      maxBatchSize: maxBatch,
      maxInFlight,
      run: (entries) =>
        Effect.map(
          call("DeleteMessageBatch", entries[0].receipt.queue, (abortSignal) =>
            client.send(
              new DeleteMessageBatchCommand({
                QueueUrl: entries[0].url,
                Entries: entries.map((entry, i) => ({ Id: String(i), ReceiptHandle: entry.token.handle }))
              }),
              { abortSignal }
            )),
          (output) => outcomes("DeleteMessageBatch", entries, output.Failed)
        )
    })

    const visibilityBatched = yield* Batching.make<VisibilityEntry, void, MessagingError.MessagingError>({
      key: (entry) => `visibility:${entry.url}`,
      maxBatchSize: maxBatch,
      maxInFlight,
      run: (entries) =>
        Effect.map(
          call("ChangeMessageVisibilityBatch", entries[0].receipt.queue, (abortSignal) =>
            client.send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: entries[0].url,
                Entries: entries.map((entry, i) => ({
                  Id: String(i),
                  ReceiptHandle: entry.token.handle,
                  VisibilityTimeout: entry.seconds
                }))
              }),
              { abortSignal }
            )),
          (output) => outcomes("ChangeMessageVisibilityBatch", entries, output.Failed)
        )
    })

    return { delete: deleteBatched, changeVisibility: visibilityBatched }
  })
