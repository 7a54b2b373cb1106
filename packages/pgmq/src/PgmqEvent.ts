/**
 * The typed notification events, decoded from the JSON wire format the
 * triggers send (see `PgmqNotify`, compatible with tasker-pgmq), plus the
 * upstream extension's empty `pgmq.q_<name>.INSERT` notification.
 */
import { Data, Result, Schema } from "effect"
import type { Message } from "@conveyor/core"

export type PgmqEvent = Data.TaggedEnum<{
  QueueCreated: {
    readonly channel: string
    readonly queueName: string
    readonly namespace: string
    readonly createdAt: Date
  }
  /** One message; `readyAt` is when it becomes visible (later than now for a delayed message). */
  MessageReady: {
    readonly channel: string
    readonly msgId: string
    readonly queueName: string
    readonly namespace: string
    readonly readyAt: Date
    readonly delaySeconds: number
  }
  /** One message, visible now, with its payload inline. */
  MessageWithPayload: {
    readonly channel: string
    readonly msgId: string
    readonly queueName: string
    readonly namespace: string
    readonly message: Message.Json
    readonly readyAt: Date
    readonly delaySeconds: number
  }
  /**
   * Several messages from one statement. `msgIds` may list fewer than
   * `messageCount` (the list is cut to fit the byte limit, and the extension's
   * INSERT channel lists none): the rest must be claimed by reading the queue.
   */
  BatchReady: {
    readonly channel: string
    readonly msgIds: ReadonlyArray<string>
    readonly queueName: string
    readonly namespace: string
    readonly messageCount: number
    readonly readyAt: Date
    readonly delaySeconds: number
  }
}>

export const PgmqEvent = Data.taggedEnum<PgmqEvent>()

const Id = Schema.Union([Schema.Number, Schema.String])
const Common = {
  queue_name: Schema.String,
  namespace: Schema.String
}
const Ready = { ...Common, ready_at: Schema.String, delay_seconds: Schema.Number }

const Wire = Schema.Union([
  Schema.Struct({ event_type: Schema.Literal("queue_created"), ...Common, created_at: Schema.String }),
  Schema.Struct({ event_type: Schema.Literal("message_ready"), msg_id: Id, ...Ready }),
  Schema.Struct({
    event_type: Schema.Literal("message_with_payload"),
    msg_id: Id,
    message: Schema.Unknown,
    ...Ready
  }),
  Schema.Struct({
    event_type: Schema.Literal("batch_ready"),
    msg_ids: Schema.Array(Id),
    message_count: Schema.Number,
    ...Ready
  })
])
type Wire = typeof Wire.Type

const decodeWire = Schema.decodeUnknownResult(Wire)

const date = (text: string): Date | undefined => {
  const at = new Date(text)
  return Number.isNaN(at.getTime()) ? undefined : at
}

/**
 * A ready time, rounded up to the millisecond: `Date` keeps milliseconds,
 * and PostgreSQL's `vt` has microseconds (other tasker-pgmq triggers send
 * them), so the truncated time can be before the row is visible.
 */
const readyDate = (text: string): Date | undefined => {
  const at = date(text)
  const fraction = /\.\d{3}(\d+)/.exec(text)?.[1]
  return at !== undefined && fraction !== undefined && /[1-9]/.test(fraction) ? new Date(at.getTime() + 1) : at
}

/** The extension's own notification carries no payload; its channel names the table. */
const extensionInsert = /^pgmq\.q_([a-z_][a-z0-9_]*)\.INSERT$/

/**
 * Decodes one notification, or explains why it is not one of ours. Message
 * ids travel as JSON numbers; ids past 2^53 would lose precision, which a
 * bigint sequence reaches only after 9 quadrillion messages.
 */
export const decode = (
  channel: string,
  payload: string,
  namespaceOf: (queue: string) => string,
  now: Date
): Result.Result<PgmqEvent, string> => {
  const insert = extensionInsert.exec(channel)
  if (insert !== null) {
    const queueName = insert[1]!
    return Result.succeed(PgmqEvent.BatchReady({
      channel,
      msgIds: [],
      queueName,
      namespace: namespaceOf(queueName),
      messageCount: 1,
      readyAt: now,
      delaySeconds: 0
    }))
  }
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch {
    return Result.fail(`not JSON: ${payload.slice(0, 80)}`)
  }
  const wire = decodeWire(json)
  if (Result.isFailure(wire)) return Result.fail(`not a PGMQ notification: ${String(wire.failure)}`)
  return fromWire(channel, wire.success)
}

const fromWire = (channel: string, wire: Wire): Result.Result<PgmqEvent, string> => {
  if (wire.event_type === "queue_created") {
    const createdAt = date(wire.created_at)
    return createdAt === undefined
      ? Result.fail(`bad created_at ${wire.created_at}`)
      : Result.succeed(PgmqEvent.QueueCreated({ channel, queueName: wire.queue_name, namespace: wire.namespace, createdAt }))
  }
  const readyAt = readyDate(wire.ready_at)
  if (readyAt === undefined) return Result.fail(`bad ready_at ${wire.ready_at}`)
  const common = { channel, queueName: wire.queue_name, namespace: wire.namespace, readyAt }
  switch (wire.event_type) {
    case "message_ready":
      return Result.succeed(PgmqEvent.MessageReady({ ...common, msgId: String(wire.msg_id), delaySeconds: wire.delay_seconds }))
    case "message_with_payload":
      return Result.succeed(PgmqEvent.MessageWithPayload({
        ...common,
        msgId: String(wire.msg_id),
        message: wire.message as Message.Json,
        delaySeconds: wire.delay_seconds
      }))
    case "batch_ready":
      return Result.succeed(PgmqEvent.BatchReady({
        ...common,
        msgIds: wire.msg_ids.map(String),
        messageCount: wire.message_count,
        delaySeconds: wire.delay_seconds
      }))
  }
}

/** The queue an event is about. */
export const queueOf = (event: PgmqEvent): string => event.queueName
