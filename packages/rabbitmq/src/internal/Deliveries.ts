/**
 * Every unacked delivery this provider holds, from basic.get or basic.consume,
 * with its visibility deadline. AMQP has no visibility timeout, so it is
 * emulated: a sweeper requeues deliveries whose deadline passed, and
 * `extendVisibility` moves the deadline. A delivery leaves the table exactly
 * once (ack, nack, expiry, or its channel closing), which is what makes a
 * second settlement a `StaleReceipt` instead of a channel-killing double ack.
 *
 * Acks of one consumer channel issued together go out as few frames as AMQP
 * allows: one `basic.ack multiple` up to the highest tag below every delivery
 * of that channel still held (a `multiple` ack must never cover a delivery
 * someone else holds, or one being replaced), single acks for the rest.
 */
import type amqp from "amqplib"
import { Clock, Effect, Exit, Schedule } from "effect"
import { Batching, type Message, type MessagingError, type QueueName, Receipts } from "@conveyor/core"
import type { Channel } from "./Channel.ts"
import * as Codec from "./Codec.ts"
import { provider } from "./errors.ts"

export interface Delivery {
  readonly key: string
  readonly queue: QueueName.QueueName
  readonly messageId: Message.MessageId
  readonly channel: Channel
  readonly message: amqp.Message
  /** The receiveCount of this claim, carried into a requeued copy. */
  readonly receiveCount: number
  /** When it was sent, or, for a foreign message that carries no time, when this provider first saw it. */
  readonly sentAt: number
  deadline: number
  /** Being replaced (nack, expiry): no longer settleable by its receipt, still unsettled at the broker. */
  taken: boolean
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

const tagOf = (delivery: Delivery) => delivery.message.fields.deliveryTag

const fromConsumer = (delivery: Delivery) => "consumerTag" in delivery.message.fields

export const make = (
  /** Puts an expired delivery back (republished with its count); the original is acked by the caller. */
  requeue: (delivery: Delivery) => Effect.Effect<void, MessagingError.MessagingError>
) =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const table = new Map<string, Delivery>()

    const track = (
      channel: Channel,
      queue: QueueName.QueueName,
      messageId: Message.MessageId,
      message: amqp.Message,
      receiveCount: number,
      visibilityMs: number
    ): { readonly receipt: Message.Receipt; readonly deadline: number; readonly sentAt: number } => {
      const token: Token = { channel: channel.id, tag: message.fields.deliveryTag }
      const now = clock.currentTimeMillisUnsafe()
      const deadline = now + visibilityMs
      const sentAt = Codec.sentAt(message, now)
      const key = keyOf(token)
      table.set(key, { key, queue, messageId, channel, message, receiveCount, sentAt, deadline, taken: false })
      return { receipt: { provider, queue, messageId, token }, deadline, sentAt }
    }

    /** The held delivery, or why the receipt cannot settle anything. */
    const lookup = (receipt: Message.Receipt): Delivery | MessagingError.MessagingError => {
      if (receipt.provider !== provider || !isToken(receipt.token)) return Receipts.foreign(receipt, provider, "settle")
      const delivery = table.get(keyOf(receipt.token))
      return delivery !== undefined && !delivery.taken && delivery.channel.open ? delivery : Receipts.stale(receipt)
    }

    const find = (receipt: Message.Receipt): Effect.Effect<Delivery, MessagingError.MessagingError> =>
      Effect.suspend(() => {
        const found = lookup(receipt)
        return "key" in found ? Effect.succeed(found) : Effect.fail(found)
      })

    /** Marks the delivery taken: from here on only the caller may settle it (through `replace` or `giveBack`). */
    const take = (receipt: Message.Receipt) =>
      Effect.tap(find(receipt), (delivery) => Effect.sync(() => delivery.taken = true))

    /** A fire-and-forget channel call that settles `delivery`; it throws only when the channel is gone. */
    const settleOn = (delivery: Delivery, receipt: Message.Receipt, f: (ch: amqp.Channel) => void) =>
      Effect.suspend(() => {
        table.delete(delivery.key)
        try {
          f(delivery.channel.raw)
          delivery.channel.link.coalesce()
          return Effect.void
        } catch {
          return Effect.fail(Receipts.stale(receipt))
        }
      })

    const settle = (receipt: Message.Receipt, f: (ch: amqp.Channel, message: amqp.Message) => void) =>
      Effect.suspend((): Effect.Effect<void, MessagingError.MessagingError> => {
        const found = lookup(receipt)
        return "key" in found ? settleOn(found, receipt, (ch) => f(ch, found.message)) : Effect.fail(found)
      })

    const receiptOf = (delivery: Delivery): Message.Receipt => ({
      provider,
      queue: delivery.queue,
      messageId: delivery.messageId,
      token: { channel: delivery.channel.id, tag: tagOf(delivery) }
    })

    /** Back to the broker as it is (a taken delivery whose copy could not be routed). */
    const giveBack = (delivery: Delivery) =>
      settleOn(delivery, receiptOf(delivery), (ch) => ch.nack(delivery.message, false, true))

    /** Republishes a copy (through `requeue` or a delay queue), then acks the original. */
    const replace = (
      delivery: Delivery,
      publishCopy: Effect.Effect<void, MessagingError.MessagingError>
    ): Effect.Effect<void, MessagingError.MessagingError> => {
      const receipt = receiptOf(delivery)
      if (!delivery.channel.open) return Effect.andThen(Effect.sync(() => table.delete(delivery.key)), Effect.fail(Receipts.stale(receipt)))
      return publishCopy.pipe(
        Effect.tapError(() => Effect.ignore(giveBack(delivery))),
        Effect.andThen(settleOn(delivery, receipt, (ch) => ch.ack(delivery.message)))
      )
    }

    /** Acks of one channel: `multiple` up to the highest tag below every other unsettled delivery. */
    const ackChannel = (receipts: ReadonlyArray<Message.Receipt>) =>
      Effect.sync(() => {
        const results: Array<Exit.Exit<void, MessagingError.MessagingError>> = []
        const acking: Array<Delivery> = []
        for (const receipt of receipts) {
          const found = lookup(receipt)
          if (!("key" in found)) {
            results.push(Exit.fail(found))
            continue
          }
          table.delete(found.key)
          acking.push(found)
          results.push(Exit.void)
        }
        const channel = acking[0]?.channel
        if (channel === undefined) return results
        let lowestHeld = Number.POSITIVE_INFINITY
        for (const other of table.values()) {
          if (other.channel === channel && tagOf(other) < lowestHeld) lowestHeld = tagOf(other)
        }
        // Only consumer deliveries: one from basic.get may be on the wire, untracked, below
        // a tag acked here (a consumer's are tracked as amqplib dispatches them, in tag order).
        const covered = acking.every(fromConsumer) ? acking.filter((delivery) => tagOf(delivery) < lowestHeld) : []
        const highest = covered.reduce<Delivery | undefined>((top, d) => (top === undefined || tagOf(d) > tagOf(top) ? d : top), undefined)
        try {
          if (covered.length > 1) channel.raw.ack(highest!.message, true)
          for (const delivery of acking) {
            if (covered.length <= 1 || tagOf(delivery) >= lowestHeld) channel.raw.ack(delivery.message)
          }
          channel.link.coalesce()
          return results
        } catch {
          return receipts.map((receipt, i) => Exit.isSuccess(results[i]!) ? Exit.fail(Receipts.stale(receipt)) : results[i]!)
        }
      })

    const ackKey = (receipt: Message.Receipt) => (isToken(receipt.token) ? String(receipt.token.channel) : "foreign")
    const ack = yield* Batching.make<Message.Receipt, void, MessagingError.MessagingError>({ key: ackKey, run: ackChannel })

    const sweep = Effect.suspend(() => {
      const now = clock.currentTimeMillisUnsafe()
      const expired: Array<Delivery> = []
      for (const delivery of table.values()) {
        if (!delivery.taken && delivery.deadline <= now) expired.push(delivery)
      }
      for (const delivery of expired) delivery.taken = true
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
      giveBack,
      ack,
      /** Acks already gathered (`Messaging.ackAll`): one `basic.ack` pass per channel. */
      ackAll: Batching.all({ key: ackKey, run: ackChannel }),
      /** Back to the broker as it is, e.g. a claim its caller never saw. */
      release: (receipt: Message.Receipt) => settle(receipt, (ch, message) => ch.nack(message, false, true)),
      deadLetter: (receipt: Message.Receipt) => settle(receipt, (ch, message) => ch.nack(message, false, false)),
      extend: (receipt: Message.Receipt, visibilityMs: number) =>
        Effect.map(find(receipt), (delivery) => {
          delivery.deadline = clock.currentTimeMillisUnsafe() + visibilityMs
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
