/**
 * Payload checks done before anything is sent: `JSON.stringify` silently drops
 * functions and `undefined`, turns `NaN` into `null` and throws on bigint and
 * cycles, so every value is walked and refused with the path of the offence.
 */
import { Effect, Result } from "effect"
import type { Json } from "./Message.ts"
import { InvalidPayload, MessageTooLarge } from "./MessagingError.ts"
import type { QueueName } from "./QueueName.ts"

/** Default ceiling for one encoded payload (1 MiB), shared by the providers. */
export const defaultMaxBytes = 1024 * 1024

const describe = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined
    case "number":
      return Number.isFinite(value) ? undefined : `the number ${value} has no JSON form`
    case "object":
      return undefined
    default:
      return `a ${typeof value} has no JSON form`
  }
}

const findProblem = (value: unknown, path: string, seen: Set<object>): InvalidPayload | undefined => {
  const why = describe(value)
  if (why !== undefined) return new InvalidPayload({ path, message: `Payload is not JSON at ${path}: ${why}` })
  if (typeof value !== "object" || value === null) return undefined
  if (seen.has(value)) return new InvalidPayload({ path, message: `Payload is not JSON at ${path}: cyclic reference` })
  if (!Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      return new InvalidPayload({
        path,
        message: `Payload is not JSON at ${path}: a ${proto?.constructor?.name ?? "class"} instance is not a plain object`
      })
    }
  }
  seen.add(value)
  const entries: Iterable<[string, unknown]> = Array.isArray(value)
    ? value.map((v, i): [string, unknown] => [`[${i}]`, v])
    : Object.entries(value).map(([k, v]): [string, unknown] => [`.${k}`, v])
  for (const [key, child] of entries) {
    const found = findProblem(child, path + key, seen)
    if (found !== undefined) return found
  }
  seen.delete(value)
  return undefined
}

/**
 * The check on every send: no paths, no allocations. `ancestors` holds the
 * objects on the way down, so only a real cycle (not a shared value) fails.
 */
const isJson = (value: unknown, ancestors: Array<object>): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value)
    case "object": {
      if (value === null) return true
      if (ancestors.includes(value)) return false
      ancestors.push(value)
      let ok = true
      if (Array.isArray(value)) {
        for (let i = 0; ok && i < value.length; i++) ok = isJson(value[i], ancestors)
      } else {
        const proto = Object.getPrototypeOf(value)
        ok = proto === Object.prototype || proto === null
        for (const key in value) {
          if (!ok) break
          if (Object.hasOwn(value, key)) ok = isJson((value as Record<string, unknown>)[key], ancestors)
        }
      }
      ancestors.pop()
      return ok
    }
    default:
      return false
  }
}

/** Refuses anything that is not a JSON value, reporting where (the path is only worked out on failure). */
export const validate = (payload: unknown): Effect.Effect<Json, InvalidPayload> =>
  Effect.suspend(() =>
    isJson(payload, [])
      ? Effect.succeed(payload as Json)
      : Effect.fail(findProblem(payload, "$", new Set()) ?? new InvalidPayload({ path: "$", message: "Payload is not JSON" }))
  )

/**
 * The text of `payload`, or why it is refused: validated, encoded, within `maxBytes` in UTF-8.
 * A text of at most `maxBytes / 3` characters fits without counting (a UTF-16 unit is at most
 * three UTF-8 bytes): workflow payloads are small, and this runs once per send.
 */
const encodeOne = (queue: QueueName, payload: unknown, maxBytes: number): string | InvalidPayload | MessageTooLarge => {
  if (!isJson(payload, [])) {
    return findProblem(payload, "$", new Set()) ?? new InvalidPayload({ path: "$", message: "Payload is not JSON" })
  }
  const text = JSON.stringify(payload)
  if (text.length * 3 <= maxBytes) return text
  const bytes = Buffer.byteLength(text, "utf8")
  return bytes > maxBytes
    ? new MessageTooLarge({
      queue,
      bytes,
      maxBytes,
      message: `Message for queue ${queue} is ${bytes} bytes, over the limit of ${maxBytes}`
    })
    : text
}

/**
 * `encode` as a value rather than an effect, for a provider's per-message path to check and
 * encode in the step it already runs.
 */
export const encodeResult = (
  queue: QueueName,
  payload: unknown,
  maxBytes: number
): Result.Result<string, InvalidPayload | MessageTooLarge> => {
  const encoded = encodeOne(queue, payload, maxBytes)
  return typeof encoded === "string" ? Result.succeed(encoded) : Result.fail(encoded)
}

/** Validates, encodes and enforces the provider's size limit in UTF-8 bytes. */
export const encode = (
  queue: QueueName,
  payload: unknown,
  maxBytes: number
): Effect.Effect<string, InvalidPayload | MessageTooLarge> =>
  Effect.suspend(() => {
    const encoded = encodeOne(queue, payload, maxBytes)
    return typeof encoded === "string" ? Effect.succeed(encoded) : Effect.fail(encoded)
  })

/** `encode` of every payload in one step: the texts in order, or the first refusal. */
export const encodeAll = (
  queue: QueueName,
  payloads: ReadonlyArray<unknown>,
  maxBytes: number
): Effect.Effect<Array<string>, InvalidPayload | MessageTooLarge> =>
  Effect.suspend(() => {
    const texts: Array<string> = []
    for (const payload of payloads) {
      const encoded = encodeOne(queue, payload, maxBytes)
      if (typeof encoded !== "string") return Effect.fail(encoded)
      texts.push(encoded)
    }
    return Effect.succeed(texts)
  })
