/**
 * One claim step on one queue (see claimScripts.claim), decoded into messages.
 * An entry that is not a Conveyor message (no payload field, not JSON: another
 * writer's entry) is dead-lettered at once: kept, never retried forever.
 * The step runs uninterruptibly: once the script has claimed, its messages
 * must reach the caller, or they would sit claimed by nobody until their
 * deadline.
 */
import type { Message, MessagingError, QueueName } from "@conveyor/core"
import { Effect } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { type Claimed, type ClaimReply, claimReply, toQueued } from "./Codec.ts"
import { fromRedis } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./claimScripts.ts"
import type { Settle } from "./Settle.ts"

export interface Claim {
  readonly reply: ClaimReply
  readonly messages: ReadonlyArray<Message.QueuedMessage>
}

export interface Claims {
  /** The claim step; `ensureWake` also creates the group on the queue's wake stream. */
  readonly step: (
    queue: QueueName.QueueName,
    max: number,
    visibilityMs: number,
    ensureWake?: boolean
  ) => Effect.Effect<Claim, MessagingError.MessagingError>
  /** Claimed entries as messages, and the receipts of those that are not Conveyor messages. */
  readonly toMessages: (
    queue: QueueName.QueueName,
    claimed: ReadonlyArray<Claimed>,
    visibleUntil: Date
  ) => { readonly messages: Array<Message.QueuedMessage>; readonly foreign: ReadonlyArray<Message.Receipt> }
  /** Dead-letters entries that are not Conveyor messages (`toMessages`' `foreign`), logging what it did. */
  readonly deadLetterForeign: (queue: QueueName.QueueName, foreign: ReadonlyArray<Message.Receipt>) => Effect.Effect<void>
  /** Claimed entries as messages; the ones that are not Conveyor messages are dead-lettered. */
  readonly decode: (
    queue: QueueName.QueueName,
    claimed: ReadonlyArray<Claimed>,
    visibleUntil: Date
  ) => Effect.Effect<ReadonlyArray<Message.QueuedMessage>>
}

export const make = (
  redis: EffectRedis.Redis["Service"],
  keys: Keys,
  group: string,
  consumer: string,
  settle: Settle
): Claims => {
  const toMessages: Claims["toMessages"] = (queue, claimed, visibleUntil) => {
    const messages: Array<Message.QueuedMessage> = []
    const foreign: Array<Message.Receipt> = []
    for (const entry of claimed) {
      const message = toQueued(queue, entry, visibleUntil)
      if (typeof message !== "string") {
        messages.push(message)
        continue
      }
      foreign.push({ provider: "redis", queue, messageId: entry.entry, token: { entry: entry.entry, count: String(entry.count) } })
    }
    return { messages, foreign }
  }

  const deadLetterForeign: Claims["deadLetterForeign"] = (queue, foreign) =>
    settle.deadLetterAll(foreign).pipe(
      Effect.andThen(Effect.logWarning(`Dead-lettered ${foreign.length} entries of queue ${queue} that are not Conveyor messages`)),
      Effect.catch((error) => Effect.logWarning(`Could not dead-letter foreign entries of queue ${queue}: ${error.message}`))
    )

  const decode: Claims["decode"] = (queue, claimed, visibleUntil) => {
    const { foreign, messages } = toMessages(queue, claimed, visibleUntil)
    return foreign.length === 0 ? Effect.succeed(messages) : Effect.as(deadLetterForeign(queue, foreign), messages)
  }

  const step: Claims["step"] = (queue, max, visibilityMs, ensureWake = false) =>
    redis.eval(Scripts.claim)(keys.of(queue), group, consumer, max, visibilityMs, ensureWake).pipe(
      Effect.mapError(fromRedis("receive", queue)),
      Effect.flatMap((raw) => {
        const reply = claimReply(raw)
        return Effect.map(decode(queue, reply.claimed, new Date(reply.now + visibilityMs)), (messages): Claim => ({ reply, messages }))
      }),
      Effect.uninterruptible
    )

  return { step, toMessages, deadLetterForeign, decode }
}
