/**
 * From `SqlError` to the Messaging contract's errors: connection trouble is
 * `ConnectionError` (retryable), a missing queue table is `QueueNotFound`,
 * everything else is `ProviderError` carrying the driver's cause. Messages
 * never include the connection URL.
 */
import { MessagingError } from "@conveyor/core"
import type { SqlError } from "effect/sql/SqlError"

export const provider = "pgmq"

/** PostgreSQL's SQLSTATE of a failed statement, when the server sent one. */
export const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

export const isConnectionFailure = (error: SqlError): boolean => error.reason._tag === "ConnectionError"

export const connectionError = (operation: string, error: SqlError) =>
  new MessagingError.ConnectionError({
    provider,
    message: `PostgreSQL unreachable during ${operation}: ${error.message}`,
    cause: error
  })

const refused = (operation: string, error: SqlError, queue?: string) =>
  new MessagingError.ProviderError({
    provider,
    operation,
    message: `PostgreSQL refused ${operation}${queue === undefined ? "" : ` on ${queue}`}: ${error.message}`,
    cause: error
  })

/** For operations not tied to one queue. */
export const fromSql = (operation: string) =>
(error: SqlError): MessagingError.ConnectionError | MessagingError.ProviderError =>
  isConnectionFailure(error) ? connectionError(operation, error) : refused(operation, error)

/** For operations on `queue`: a missing table means the queue does not exist. */
export const fromSqlOn = (operation: string, queue: string) =>
(error: SqlError): MessagingError.ConnectionError | MessagingError.QueueNotFound | MessagingError.ProviderError => {
  if (isConnectionFailure(error)) return connectionError(operation, error)
  if (sqlState(error) === "42P01") {
    return new MessagingError.QueueNotFound({ queue, message: `Queue ${queue} does not exist` })
  }
  return refused(operation, error, queue)
}
