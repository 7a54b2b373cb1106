/**
 * How notifications are named and sized: the optional channel prefix, the
 * queue-name pattern that yields a queue's namespace, and the byte limit for
 * one notification. The SQL triggers (`PgmqNotify`) and the listener derive
 * channel names from the same configuration, so both sides agree.
 */
import { Effect, Schema } from "effect"

export class InvalidNotifyConfig extends Schema.TaggedError<InvalidNotifyConfig>()("InvalidNotifyConfig", {
  field: Schema.String,
  message: Schema.String
}) {}

export interface NotifyConfig {
  /** Channels become `<prefix>.pgmq_message_ready...`. */
  readonly channelPrefix?: string | undefined
  /**
   * A regular expression with a named group `namespace`, e.g.
   * `(?<namespace>\w+)_queue`; when absent, the default rules apply
   * (`orchestration…`, `worker_<ns>_queue`, `<ns>_queue`, else `default`).
   */
  readonly queuePattern?: string | undefined
  /** Largest notification payload in bytes (PostgreSQL stops at 8000). */
  readonly notifyMaxBytes: number
}

export const defaultNotifyMaxBytes = 7800
export const maxChannelBytes = 63

/** Accepted in configuration files and CLI flags; every field optional. */
export const NotifyConfigInput = Schema.Struct({
  channelPrefix: Schema.optional(Schema.String),
  queuePattern: Schema.optional(Schema.String),
  notifyMaxBytes: Schema.optional(Schema.Number)
})
export type NotifyConfigInput = typeof NotifyConfigInput.Type

const prefixPattern = /^[a-z0-9_]{1,30}$/
const namedGroup = /\(\?P?<namespace>/

/** Validates and fills in defaults. */
export const make = (input: NotifyConfigInput): Effect.Effect<NotifyConfig, InvalidNotifyConfig> =>
  Effect.gen(function*() {
    const notifyMaxBytes = input.notifyMaxBytes ?? defaultNotifyMaxBytes
    if (!Number.isInteger(notifyMaxBytes) || notifyMaxBytes < 512 || notifyMaxBytes > 7999) {
      return yield* new InvalidNotifyConfig({
        field: "notifyMaxBytes",
        message: `notifyMaxBytes must be an integer between 512 and 7999 (PostgreSQL's NOTIFY limit is 8000 bytes), got ${notifyMaxBytes}`
      })
    }
    if (input.channelPrefix !== undefined && !prefixPattern.test(input.channelPrefix)) {
      return yield* new InvalidNotifyConfig({
        field: "channelPrefix",
        message: "channelPrefix must be 1-30 characters of a-z, 0-9 and _"
      })
    }
    if (input.queuePattern !== undefined) {
      if (!namedGroup.test(input.queuePattern)) {
        return yield* new InvalidNotifyConfig({
          field: "queuePattern",
          message: "queuePattern must contain a named group (?<namespace>...)"
        })
      }
      try {
        new RegExp(jsPattern(input.queuePattern))
      } catch (error) {
        return yield* new InvalidNotifyConfig({
          field: "queuePattern",
          message: `queuePattern is not a valid regular expression: ${String(error)}`
        })
      }
      if (input.queuePattern.includes("'")) {
        return yield* new InvalidNotifyConfig({ field: "queuePattern", message: "queuePattern must not contain quotes" })
      }
    }
    return {
      notifyMaxBytes,
      ...(input.channelPrefix === undefined ? {} : { channelPrefix: input.channelPrefix }),
      ...(input.queuePattern === undefined ? {} : { queuePattern: input.queuePattern })
    }
  })

/** Python-style `(?P<name>` (as tasker-pgmq writes it) is JavaScript's `(?<name>`. */
const jsPattern = (pattern: string) => pattern.replace("(?P<namespace>", "(?<namespace>")

/**
 * The pattern for PostgreSQL's `regexp_match`, which has no named groups:
 * the namespace group becomes a plain group and its position is returned.
 */
export const sqlPattern = (pattern: string): { readonly regex: string; readonly group: number } => {
  const js = jsPattern(pattern)
  const at = js.indexOf("(?<namespace>")
  let group = 1
  let inClass = false
  for (let i = 0; i < at; i++) {
    const c = js[i]
    if (c === "\\") {
      i++
    } else if (inClass) {
      if (c === "]") inClass = false
    } else if (c === "[") {
      inClass = true
    } else if (c === "(" && js[i + 1] !== "?") {
      group++
    }
  }
  return { regex: js.replace("(?<namespace>", "("), group }
}

/** The namespace of a queue, exactly as the SQL trigger computes it. */
export const namespaceOf = (config: NotifyConfig, queue: string): string => {
  if (config.queuePattern !== undefined) {
    return new RegExp(jsPattern(config.queuePattern)).exec(queue)?.groups?.["namespace"] ?? "default"
  }
  if (queue.startsWith("orchestration")) return "orchestration"
  return /^worker_(.+)_queue$/.exec(queue)?.[1] ?? /^(.+)_queue$/.exec(queue)?.[1] ?? "default"
}

const prefixed = (config: NotifyConfig, channel: string) =>
  config.channelPrefix === undefined ? channel : `${config.channelPrefix}.${channel}`

export const queueCreatedChannel = (config: NotifyConfig): string => prefixed(config, "pgmq_queue_created")

export const globalChannel = (config: NotifyConfig): string => prefixed(config, "pgmq_message_ready")

/**
 * The channel a queue's messages are announced on: its namespace channel, or
 * the global one when the namespace channel would pass PostgreSQL's 63 bytes
 * (the trigger then only notifies the global channel).
 */
export const messageChannel = (config: NotifyConfig, queue: string): string => {
  const channel = `${globalChannel(config)}.${namespaceOf(config, queue)}`
  return Buffer.byteLength(channel, "utf8") <= maxChannelBytes ? channel : globalChannel(config)
}

/** The channel of the upstream extension's `pgmq.enable_notify_insert`. */
export const extensionInsertChannel = (queue: string): string => `pgmq.q_${queue}.INSERT`

/** Stored next to the notify version so a later install can tell whether it changed. */
export const toJson = (config: NotifyConfig) => ({
  channelPrefix: config.channelPrefix ?? null,
  queuePattern: config.queuePattern ?? null,
  notifyMaxBytes: config.notifyMaxBytes
})
