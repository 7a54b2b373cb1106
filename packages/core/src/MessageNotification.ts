/**
 * What a subscription emits. `Available` is a signal (the consumer must claim
 * the message itself); `Message` is a delivery already claimed for this
 * subscriber, to be acked or nacked.
 */
import { Data, type Option } from "effect"
import type { MessageId, QueuedMessage } from "./Message.ts"
import type { QueueName } from "./QueueName.ts"

export type MessageNotification = Data.TaggedEnum<{
  Available: {
    readonly queue: QueueName
    readonly messageId: Option.Option<MessageId>
    readonly visibleAt: Option.Option<Date>
  }
  Message: { readonly message: QueuedMessage }
}>

export const { Available, Message, $is, $match } = Data.taggedEnum<MessageNotification>()

/**
 * The state of a provider's push path. `Reconnected` follows a `Degraded`
 * spell: notifications sent during the gap are lost, so consumers sweep.
 */
export type PushHealth = Data.TaggedEnum<{
  Connected: {}
  Degraded: { readonly reason: string }
  Reconnected: {}
}>

export const PushHealth = Data.taggedEnum<PushHealth>()
