/**
 * The receipt errors every provider reports the same way: a delivery no
 * longer held (`StaleReceipt`), and a receipt another provider issued.
 */
import type { Receipt } from "./Message.ts"
import { ProviderError, StaleReceipt } from "./MessagingError.ts"

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
