/**
 * Turns RedisError (node-redis failures) into the Messaging errors: a reply
 * from the server is a refusal (`ProviderError`, or `QueueNotFound` for a
 * missing stream or group), anything else means the connection failed
 * (`ConnectionError`, retryable). Causes are node-redis errors, which never
 * carry the URL or its password.
 */
import { MessagingError } from "@conveyor/core"
import type * as EffectRedis from "effect/persistence/Redis"
import { ErrorReply } from "redis"
import { provider } from "./Codec.ts"

export const queueNotFound = (queue: string) =>
  new MessagingError.QueueNotFound({ queue, message: `Queue ${queue} does not exist` })

export const connectionLost = (operation: string, cause?: unknown) =>
  new MessagingError.ConnectionError({
    provider,
    message: `Redis ${operation} failed: the connection was lost or refused`,
    ...(cause === undefined ? {} : { cause })
  })

export const isReply = (error: EffectRedis.RedisError) => error.cause instanceof ErrorReply

export const fromRedis = (operation: string, queue?: string) =>
(error: EffectRedis.RedisError): MessagingError.MessagingError => {
  const cause = error.cause
  if (!(cause instanceof ErrorReply)) return connectionLost(operation, cause)
  if (queue !== undefined && /NOQUEUE|NOGROUP/.test(cause.message)) return queueNotFound(queue)
  return new MessagingError.ProviderError({
    provider,
    operation,
    message: `Redis ${operation} failed: ${cause.message}`,
    cause
  })
}
