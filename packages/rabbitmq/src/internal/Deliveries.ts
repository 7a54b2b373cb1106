/**
 * Every unacked delivery this provider holds, from basic.get or basic.consume,
 * with its visibility deadline. AMQP has no visibility timeout, so it is
 * emulated: a sweeper requeues deliveries whose deadline passed, and
 * `extendVisibility` moves the deadline. A delivery leaves the table exactly
 * once (ack, nack, expiry, or its channel closing), which is what makes a
 * second settlement a `StaleReceipt` instead of a channel-killing double ack.
 */
import type amqp from "amqplib"
import { Effect, Schedule } from "effect"
import { type Message, MessagingError, type QueueName } from "@conveyor/core"
import type { Channel } from "./Channel.ts"
import { provider } from "./errors.ts"

export interface Delivery {
  readonly key: string
  readonly queue: QueueName.QueueName
  readonly messageId: Message.MessageId
  readonly channel: Channel
  readonly message: amqp.Message
  /** The receiveCount of this claim, carried into a requeued copy. */
  readonly receiveCount: number
  deadline: number
}

interface Token {
  readonly channel: number
  readonly tag: number
}

/** How often expired deliveries are looked for: the visibility timeout's resolution. */
const sweepEvery = "20 millis"

const keyOf = (token: Token) => `${token.channel}.${token.tag}`

const isToken = (token: unknown): token is Token =>
  typeof token === "object" && token !== null && "channel" in token && "tag" in token &&
  typeof token.channel === "number" && typeof token.tag === "number"

const stale = (receipt: Message.Receipt) =>
  new MessagingError.StaleReceipt({
    queue: receipt.queue,
    messageId: receipt.messageId,
    message: `The receipt for message ${receipt.messageId} on queue ${receipt.queue} is stale: ` +
      "it was already settled, its visibility timeout passed, or its channel closed (the broker redelivers it)"
  })

export const make = (
  /** Puts an expired delivery back (republished with its count); the original is acked by the caller. */
  requeue: (delivery: Delivery) => Effect.Effect<void, MessagingError.MessagingError>
) =>
  Effect.gen(function*() {
    const table = new Map<string, Delivery>()

    const track = (
      channel: Channel,
      queue: QueueName.QueueName,
      messageId: Message.MessageId,
      message: amqp.Message,
      receiveCount: number,
      visibilityMs: number
    ): { readonly receipt: Message.Receipt; readonly deadline: number } => {
      const token: Token = { channel: channel.id, tag: message.fields.deliveryTag }
      const deadline = Date.now() + visibilityMs
      const key = keyOf(token)
      table.set(key, { key, queue, messageId, channel, message, receiveCount, deadline })
      return { receipt: { provider, queue, messageId, token }, deadline }
    }

    /** The held delivery, or why the receipt cannot settle anything. */
    const lookup = (receipt: Message.Receipt): Delivery | MessagingError.MessagingError => {
      if (receipt.provider !== provider || !isToken(receipt.token)) {
        return new MessagingError.ProviderError({
          provider,
          operation: "settle",
          message: `A receipt from provider ${receipt.provider} cannot be settled by RabbitMQ`
        })
      }
      const delivery = table.get(keyOf(receipt.token))
      return delivery !== undefined && delivery.channel.open ? delivery : stale(receipt)
    }

    const find = (receipt: Message.Receipt): Effect.Effect<Delivery, MessagingError.MessagingError> =>
      Effect.suspend(() => {
        const found = lookup(receipt)
        return "key" in found ? Effect.succeed(found) : Effect.fail(found)
      })

    /** Removes the delivery: from here on only the caller may settle it. */
    const take = (receipt: Message.Receipt) =>
      Effect.tap(find(receipt), (delivery) => Effect.sync(() => table.delete(delivery.key)))

    /**
     * Takes the delivery and runs a fire-and-forget channel call on it, in one
     * synchronous step; the call throws only when the channel is gone.
     */
    const settle = (receipt: Message.Receipt, f: (ch: amqp.Channel, message: amqp.Message) => void) =>
      Effect.suspend((): Effect.Effect<void, MessagingError.MessagingError> => {
        const found = lookup(receipt)
        if (!("key" in found)) return Effect.fail(found)
        table.delete(found.key)
        try {
          f(found.channel.raw, found.message)
          found.channel.link.coalesce()
          return Effect.void
        } catch {
          return Effect.fail(stale(receipt))
        }
      })

    /** A channel call on a delivery already taken. */
    const onChannel = (delivery: Delivery, receipt: Message.Receipt, f: (ch: amqp.Channel) => void) =>
      Effect.suspend(() => {
        try {
          f(delivery.channel.raw)
          delivery.channel.link.coalesce()
          return Effect.void
        } catch {
          return Effect.fail(stale(receipt))
        }
      })

    const receiptOf = (delivery: Delivery): Message.Receipt => ({
      provider,
      queue: delivery.queue,
      messageId: delivery.messageId,
      token: { channel: delivery.channel.id, tag: delivery.message.fields.deliveryTag }
    })

    /** Republishes a copy (through `requeue` or a delay queue), then acks the original. */
    const replace = (
      delivery: Delivery,
      publishCopy: Effect.Effect<void, MessagingError.MessagingError>
    ): Effect.Effect<void, MessagingError.MessagingError> => {
      const receipt = receiptOf(delivery)
      if (!delivery.channel.open) return Effect.fail(stale(receipt))
      return publishCopy.pipe(
        Effect.tapError(() => onChannel(delivery, receipt, (ch) => ch.nack(delivery.message, false, true)).pipe(Effect.ignore)),
        Effect.andThen(onChannel(delivery, receipt, (ch) => ch.ack(delivery.message)))
      )
    }

    const sweep = Effect.suspend(() => {
      const now = Date.now()
      const expired: Array<Delivery> = []
      for (const delivery of table.values()) {
        if (delivery.deadline <= now) expired.push(delivery)
      }
      for (const delivery of expired) table.delete(delivery.key)
      return Effect.forEach(
        expired,
        (delivery) =>
          replace(delivery, requeue(delivery)).pipe(
            Effect.catch((error) => Effect.logWarning(`Could not requeue an expired delivery: ${error.message}`))
          ),
        { concurrency: "unbounded", discard: true }
      )
    }).pipe(Effect.uninterruptible)
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(sweepEvery)))

    return {
      track,
      take,
      replace,
      ack: (receipt: Message.Receipt) => settle(receipt, (ch, message) => ch.ack(message)),
      /** Back to the broker as it is, e.g. a claim its caller never saw. */
      release: (receipt: Message.Receipt) => settle(receipt, (ch, message) => ch.nack(message, false, true)),
      deadLetter: (receipt: Message.Receipt) => settle(receipt, (ch, message) => ch.nack(message, false, false)),
      extend: (receipt: Message.Receipt, visibilityMs: number) =>
        Effect.map(find(receipt), (delivery) => {
          delivery.deadline = Date.now() + visibilityMs
        }),
      /** How many deliveries are still held on `channel`. */
      heldOn: (channel: Channel) => {
        let n = 0
        for (const delivery of table.values()) if (delivery.channel === channel) n++
        return n
      },
      /** Its deliveries are stale: the broker requeues them itself. */
      forgetChannel: (channel: Channel) => {
        for (const delivery of table.values()) {
          if (delivery.channel === channel) table.delete(delivery.key)
        }
      },
      forgetQueue: (queue: QueueName.QueueName) => {
        for (const delivery of table.values()) {
          if (delivery.queue === queue) table.delete(delivery.key)
        }
      },
      inFlight: (queue: QueueName.QueueName) => {
        let n = 0
        for (const delivery of table.values()) if (delivery.queue === queue) n++
        return n
      }
    }
  })

export type Deliveries = Effect.Success<ReturnType<typeof make>>
