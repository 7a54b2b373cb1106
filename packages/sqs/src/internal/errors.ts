/**
 * Turns AWS SDK failures into the Messaging errors. The SDK's own error
 * object is never attached as a cause: its `$response` and request metadata
 * can carry signed headers, so only its name, code and message travel on.
 */
import { MessagingError } from "@conveyor/core"

export const provider = "sqs"

const field = (cause: unknown, key: string): unknown =>
  typeof cause === "object" && cause !== null && key in cause ? (cause as Record<string, unknown>)[key] : undefined

export const nameOf = (cause: unknown): string => {
  const name = field(cause, "name")
  return typeof name === "string" ? name : ""
}

const textOf = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** What may safely be kept of an SDK error. */
const summary = (cause: unknown) => ({
  name: nameOf(cause),
  code: field(cause, "code") ?? field(cause, "Code"),
  status: (field(cause, "$metadata") as { httpStatusCode?: number } | undefined)?.httpStatusCode,
  message: textOf(cause)
})

const notFoundNames = new Set(["QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"])
const unreachable = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|socket hang up|TimeoutError|RequestTimeout|other side closed/i

export const isNotFound = (cause: unknown): boolean => notFoundNames.has(nameOf(cause))

/**
 * A failed batch entry that means "this receipt is no longer held": SQS's own
 * codes, or (what SQS answers a ChangeMessageVisibility of a message no longer
 * in flight) InvalidParameterValue about the ReceiptHandle.
 */
export const isStaleEntry = (code: string | undefined, message: string | undefined): boolean =>
  code === "ReceiptHandleIsInvalid" || code === "MessageNotInflight" ||
  (code === "InvalidParameterValue" && /receipt ?handle/i.test(message ?? ""))

export const isUnreachable = (cause: unknown): boolean =>
  unreachable.test(nameOf(cause)) || unreachable.test(String(field(cause, "code") ?? "")) || unreachable.test(textOf(cause))

export const queueNotFound = (queue: string) =>
  new MessagingError.QueueNotFound({ queue, message: `Queue ${queue} does not exist` })

export const fromSdk = (operation: string, queue?: string) => (cause: unknown): MessagingError.MessagingError => {
  if (isNotFound(cause) && queue !== undefined) return queueNotFound(queue)
  if (isUnreachable(cause)) {
    return new MessagingError.ConnectionError({
      provider,
      message: `SQS ${operation} failed: the endpoint could not be reached (${summary(cause).message})`,
      cause: summary(cause)
    })
  }
  return new MessagingError.ProviderError({
    provider,
    operation,
    message: `SQS ${operation}${queue === undefined ? "" : ` on ${queue}`} failed: ${summary(cause).name || "error"}: ${textOf(cause)}`,
    cause: summary(cause)
  })
}
