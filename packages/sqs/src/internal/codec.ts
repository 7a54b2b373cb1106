/**
 * Messages on the SQS wire: the payload is the JSON text of the body, each
 * header one `String` message attribute. SQS refuses what these checks refuse
 * (with less helpful errors, or after part of a batch went out), so they run
 * before anything is sent:
 * - at most 10 attributes; names of [A-Za-z0-9_.-], up to 256 characters,
 *   no leading, trailing or doubled period, not starting with `AWS.` or
 *   `Amazon.`; values non-empty;
 * - body and values only in the XML character ranges SQS accepts (JSON text
 *   escapes control characters and lone surrogates itself; U+FFFE and U+FFFF
 *   it does not, so the body escapes them, as JSON `\u` escapes that decode
 *   to the same value). Characters beyond U+FFFF are escaped too (as their
 *   surrogate pair): SQS takes them raw, but emulators that check UTF-16 code
 *   units (fauxqs) refuse them, and an escape reads the same everywhere;
 * - the body plus every attribute's name, type and value within the size limit.
 */
import type { Message as SqsMessage, MessageAttributeValue } from "@aws-sdk/client-sqs"
import { Effect } from "effect"
import { type Message, MessagingError, Payload, type QueueName } from "@conveyor/core"

export const maxAttributes = 10
const maxNameLength = 256
const namePattern = /^[A-Za-z0-9_.-]+$/
const reservedPrefix = /^(aws\.|amazon\.)/i
// Outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF (the `u` flag pairs surrogates).
const invalidCharacter = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
const stringType = "String"

export type Attributes = Record<string, MessageAttributeValue>

export interface Encoded {
  readonly body: string
  readonly attributes: Attributes
  readonly bytes: number
}

const refuse = (name: string, why: string) =>
  new MessagingError.InvalidPayload({
    path: `headers[${JSON.stringify(name)}]`,
    message: `Header ${JSON.stringify(name)} cannot travel as an SQS message attribute: ${why}`
  })

const nameProblem = (name: string): string | undefined => {
  if (name.length === 0 || name.length > maxNameLength) return `names are 1-${maxNameLength} characters`
  if (!namePattern.test(name)) return "names may hold only letters, digits, '_', '-' and '.'"
  if (name.startsWith(".") || name.endsWith(".") || name.includes("..")) return "names may not start or end with '.' or hold '..'"
  if (reservedPrefix.test(name)) return "names starting with 'AWS.' or 'Amazon.' are reserved"
  return undefined
}

const valueProblem = (value: string): string | undefined => {
  if (value.length === 0) return "SQS refuses empty values"
  if (invalidCharacter.test(value)) return "the value holds a character SQS does not accept"
  return undefined
}

export const attributesOf = (headers: Message.Headers): Effect.Effect<Attributes, MessagingError.InvalidPayload> =>
  Effect.suspend(() => {
    const names = Object.keys(headers)
    if (names.length > maxAttributes) {
      return Effect.fail(
        new MessagingError.InvalidPayload({
          path: "headers",
          message: `SQS carries at most ${maxAttributes} message attributes; got ${names.length} headers (${names.join(", ")})`
        })
      )
    }
    const attributes: Attributes = {}
    for (const name of names) {
      const value = headers[name]!
      const why = nameProblem(name) ?? valueProblem(value)
      if (why !== undefined) return Effect.fail(refuse(name, why))
      attributes[name] = { DataType: stringType, StringValue: value }
    }
    return Effect.succeed(attributes)
  })

const attributeBytes = (attributes: Attributes): number => {
  let bytes = 0
  for (const [name, value] of Object.entries(attributes)) {
    bytes += Buffer.byteLength(name, "utf8") + Buffer.byteLength(value.DataType ?? "", "utf8") +
      Buffer.byteLength(value.StringValue ?? "", "utf8")
  }
  return bytes
}

// In JSON text these can only stand inside strings, where a `\u` escape means the same character.
const needsEscape = /[\uD800-\uDFFF\uFFFE\uFFFF]/
const needsEscapeAll = /[\uD800-\uDFFF\uFFFE\uFFFF]/g
const escapeUnit = (unit: string) => `\\u${unit.charCodeAt(0).toString(16)}`

const escapeForSqs = (text: string): string => needsEscape.test(text) ? text.replace(needsEscapeAll, escapeUnit) : text

export const tooLarge = (queue: string, bytes: number, maxBytes: number) =>
  new MessagingError.MessageTooLarge({
    queue,
    bytes,
    maxBytes,
    message: `Message for queue ${queue} is ${bytes} bytes with its headers, over the SQS limit of ${maxBytes}`
  })

/** The body and attributes of one message, or why SQS could not carry it. */
export const encode = (
  queue: QueueName.QueueName,
  payload: unknown,
  headers: Message.Headers,
  maxBytes: number
): Effect.Effect<Encoded, MessagingError.InvalidPayload | MessagingError.MessageTooLarge> =>
  Effect.gen(function*() {
    const text = yield* Payload.encode(queue, payload, maxBytes)
    const attributes = yield* attributesOf(headers)
    const body = escapeForSqs(text)
    const bytes = Buffer.byteLength(body, "utf8") + attributeBytes(attributes)
    if (bytes > maxBytes) return yield* Effect.fail(tooLarge(queue, bytes, maxBytes))
    return { body, attributes, bytes }
  })

/** The payload of a received body; `undefined` when it is not JSON (another producer wrote it). */
export const decodeBody = (body: string | undefined): Message.Json | undefined => {
  if (body === undefined) return undefined
  try {
    return JSON.parse(body) as Message.Json
  } catch {
    return undefined
  }
}

export const headersOf = (message: SqsMessage): Message.Headers => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (value.StringValue !== undefined) headers[name] = value.StringValue
  }
  return headers
}

export const receiveCountOf = (message: SqsMessage): number =>
  Number(message.Attributes?.ApproximateReceiveCount ?? "1")

export const sentAtOf = (message: SqsMessage, fallback: number): Date =>
  new Date(Number(message.Attributes?.SentTimestamp ?? fallback))
