/**
 * The receipt errors every provider reports the same way: a delivery no
 * longer held (`StaleReceipt`), a receipt another provider issued, and a
 * receipt whose queue is not a valid name (`InvalidQueueName`, `checked`).
 */
import { Effect, Exit } from "effect"
import type { Receipt } from "./Message.ts"
import { type InvalidQueueName, ProviderError, StaleReceipt } from "./MessagingError.ts"
import * as QueueName from "./QueueName.ts"

/** Why a receipt's queue is not a valid name, or `undefined`: checked once for a run of receipts of one queue. */
const queueCheck = () => {
  const check = QueueName.checker()
  return (receipt: Receipt): InvalidQueueName | undefined => check(receipt.queue)
}

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
  const invalid = queueCheck()
  return (receipt: Receipt, ...args: Args): Effect.Effect<A, E | InvalidQueueName, R> => {
    const error = invalid(receipt)
    return error === undefined ? settle(receipt, ...args) : Effect.fail(error)
  }
}

/**
 * `checked` for a settle of many receipts (`Messaging.ackAll`): a receipt whose queue is not a
 * valid name gets its `InvalidQueueName`, the others go to `settleAll`.
 */
export const checkedAll = <A, E, R>(
  settleAll: (receipts: ReadonlyArray<Receipt>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, never, R>
) =>
{
  const invalid = queueCheck()
  return (receipts: ReadonlyArray<Receipt>) => refusing(receipts, invalid, settleAll)
}

/**
 * `settleAll` on the receipts `refusal` finds nothing against; each of the others fails with
 * what it found. One `Exit` per receipt, in input order.
 */
export const refusing = <A, E, F, R>(
  receipts: ReadonlyArray<Receipt>,
  refusal: (receipt: Receipt) => F | undefined,
  settleAll: (kept: ReadonlyArray<Receipt>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, never, R>
): Effect.Effect<ReadonlyArray<Exit.Exit<A, E | F>>, never, R> => {
  const refused = receipts.map(refusal)
  if (refused.every((error) => error === undefined)) return settleAll(receipts)
  return Effect.map(settleAll(receipts.filter((_, i) => refused[i] === undefined)), (exits) => {
    let next = 0
    return refused.map((error) => error === undefined ? exits[next++]! : Exit.fail(error))
  })
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
