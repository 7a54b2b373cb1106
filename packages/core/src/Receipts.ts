/**
 * The receipt errors every provider reports the same way: a delivery no
 * longer held (`StaleReceipt`), a receipt another provider issued, and a
 * receipt whose queue is not a valid name (`InvalidQueueName`, `checked`).
 */
import { Effect, Result } from "effect"
import type { Receipt } from "./Message.ts"
import { type InvalidQueueName, ProviderError, StaleReceipt } from "./MessagingError.ts"
import * as QueueName from "./QueueName.ts"

/**
 * `settle` (ack, nack, extendVisibility) run only on a receipt whose queue is a valid name, or
 * the dead-letter queue of one; otherwise `InvalidQueueName` and nothing is touched. A
 * receipt's fields can be forged with a cast as a queue name can, and its token must never be
 * used on a queue it does not name (the claim it imitates stays held).
 */
export const checked = <Args extends ReadonlyArray<unknown>, A, E, R>(
  settle: (receipt: Receipt, ...args: Args) => Effect.Effect<A, E, R>
) =>
{
  // The last name found valid, so settling a stream of receipts of one queue checks its name once.
  let valid: string | undefined
  return (receipt: Receipt, ...args: Args): Effect.Effect<A, E | InvalidQueueName, R> => {
    if (receipt.queue === valid) return settle(receipt, ...args)
    const queue = QueueName.validate(receipt.queue)
    if (Result.isFailure(queue)) return Effect.fail(queue.failure)
    valid = queue.success
    return settle(receipt, ...args)
  }
}

export const stale = (receipt: Receipt): StaleReceipt =>
  new StaleReceipt({
    queue: receipt.queue,
    messageId: receipt.messageId,
    message:
      `Delivery of message ${receipt.messageId} on ${receipt.queue} is no longer held: it was settled, or its visibility timeout passed and it was claimed again`
  })

export const foreign = (receipt: Receipt, provider: string, operation: string): ProviderError =>
  new ProviderError({
    provider,
    operation,
    message: `Receipt from provider ${receipt.provider} cannot be settled by ${provider}`
  })
