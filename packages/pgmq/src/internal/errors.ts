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

/** What the server said (its message and detail), which `SqlError`'s own message leaves out. */
const serverReason = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  if (typeof cause !== "object" || cause === null || !("message" in cause) || typeof cause.message !== "string") {
    return undefined
  }
  const detail = "detail" in cause && typeof cause.detail === "string" ? ` (${cause.detail})` : ""
  return `${cause.message}${detail}`
}

const refused = (operation: string, error: SqlError, queue?: string) => {
  const reason = serverReason(error)
  return new MessagingError.ProviderError({
    provider,
    operation,
    message: `PostgreSQL refused ${operation}${queue === undefined ? "" : ` on ${queue}`}: ${error.message}${
      reason === undefined || error.message.includes(reason) ? "" : `: ${reason}`
    }`,
    cause: error
  })
}

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
