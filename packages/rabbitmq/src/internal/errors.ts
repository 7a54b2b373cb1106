/**
 * Turns amqplib failures into the Messaging errors. A 404 is a missing queue,
 * a closed channel or connection is retryable (`ConnectionError`), anything
 * else is the broker refusing the operation (`ProviderError`, with its reply).
 */
import { MessagingError } from "@conveyor/core"

export const provider = "rabbitmq"

const codeOf = (cause: unknown): unknown =>
  typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined

const textOf = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** amqplib's word for "this channel or its connection is gone". */
export const isClosed = (cause: unknown): boolean =>
  (cause instanceof Error && cause.name === "IllegalOperationError") ||
  /(Channel|Connection) (closed|ended)|ECONNRESET|EPIPE|socket/i.test(textOf(cause))

export const queueNotFound = (queue: string) =>
  new MessagingError.QueueNotFound({ queue, message: `Queue ${queue} does not exist` })

export const connectionLost = (operation: string, cause?: unknown) =>
  new MessagingError.ConnectionError({
    provider,
    message: `RabbitMQ ${operation} failed: the channel or connection closed`,
    ...(cause === undefined ? {} : { cause })
  })

export const fromAmqp = (operation: string, queue?: string) => (cause: unknown): MessagingError.MessagingError => {
  if (codeOf(cause) === 404 && queue !== undefined) return queueNotFound(queue)
  if (isClosed(cause)) return connectionLost(operation, cause)
  return new MessagingError.ProviderError({
    provider,
    operation,
    message: `RabbitMQ ${operation} failed: ${textOf(cause)}`,
    cause
  })
}
