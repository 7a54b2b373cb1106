/**
 * The typed errors of the Messaging contract. Every message is written for a
 * human and never carries a secret (connection strings travel as `Redacted`).
 */
import { Schema } from "effect"

export class InvalidQueueName extends Schema.TaggedError<InvalidQueueName>()("InvalidQueueName", {
  name: Schema.String,
  message: Schema.String
}) {}

export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  path: Schema.String,
  message: Schema.String
}) {}

export class QueueNotFound extends Schema.TaggedError<QueueNotFound>()("QueueNotFound", {
  queue: Schema.String,
  message: Schema.String
}) {}

export class MessageTooLarge extends Schema.TaggedError<MessageTooLarge>()("MessageTooLarge", {
  queue: Schema.String,
  bytes: Schema.Number,
  maxBytes: Schema.Number,
  message: Schema.String
}) {}

export class StaleReceipt extends Schema.TaggedError<StaleReceipt>()("StaleReceipt", {
  queue: Schema.String,
  messageId: Schema.String,
  message: Schema.String
}) {}

export class Unsupported extends Schema.TaggedError<Unsupported>()("Unsupported", {
  operation: Schema.String,
  provider: Schema.String,
  message: Schema.String
}) {}

/** Retryable: the server could not be reached or the connection dropped. */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  provider: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** The driver or server refused an operation for a reason not covered above. */
export class ProviderError extends Schema.TaggedError<ProviderError>()("ProviderError", {
  provider: Schema.String,
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** A payload did not match its queue's Schema (typed facade). */
export class DecodeError extends Schema.TaggedError<DecodeError>()("DecodeError", {
  queue: Schema.String,
  messageId: Schema.String,
  message: Schema.String
}) {}

export type MessagingError =
  | InvalidQueueName
  | InvalidPayload
  | QueueNotFound
  | MessageTooLarge
  | StaleReceipt
  | Unsupported
  | ConnectionError
  | ProviderError
  | DecodeError
