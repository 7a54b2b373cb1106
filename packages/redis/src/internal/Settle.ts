/**
 * Settling claims: ack, nack (requeue or dead-letter) and extend, each one
 * script call for a whole array of receipts of one queue, checking in the
 * same step that every receipt still names the live claim (deadline not
 * passed, delivery count unchanged); the others are `StaleReceipt`, and
 * never touch the claim that replaced them.
 */
import { type Message, MessagingError, QueueName } from "@conveyor/core"
import { Effect, Exit } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { isToken, provider, type Token } from "./Codec.ts"
import { fromRedis } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./scripts.ts"

export type Outcome = ReadonlyArray<Exit.Exit<void, MessagingError.MessagingError>>

const stale = (receipt: Message.Receipt) =>
  new MessagingError.StaleReceipt({
    queue: receipt.queue,
    messageId: receipt.messageId,
    message: `The delivery of message ${receipt.messageId} on ${receipt.queue} is no longer held (its visibility timeout passed, it was settled, or it was claimed again)`
  })

const foreign = (receipt: Message.Receipt, operation: string) =>
  new MessagingError.ProviderError({
    provider,
    operation,
    message: `A receipt of provider ${receipt.provider} cannot be settled by Redis (message ${receipt.messageId} on ${receipt.queue})`
  })

export interface Settle {
  readonly ack: (receipts: ReadonlyArray<Message.Receipt>) => Effect.Effect<Outcome, MessagingError.MessagingError>
  readonly nack: (receipts: ReadonlyArray<Message.Receipt>, delayMs: number) => Effect.Effect<Outcome, MessagingError.MessagingError>
  readonly deadLetter: (receipts: ReadonlyArray<Message.Receipt>) => Effect.Effect<Outcome, MessagingError.MessagingError>
  readonly extend: (receipts: ReadonlyArray<Message.Receipt>, durationMs: number) => Effect.Effect<Outcome, MessagingError.MessagingError>
}

/**
 * `onSettled` hears of every receipt that no longer needs returning (settled
 * or found stale), so subscriptions stop tracking it. All receipts of one
 * call must be of one queue.
 */
export const make = (
  redis: EffectRedis.Redis["Service"],
  keys: Keys,
  group: string,
  onSettled: (receipt: Message.Receipt) => void
): Settle => {
  const run = (
    operation: string,
    receipts: ReadonlyArray<Message.Receipt>,
    call: (queue: QueueName.QueueName, pairs: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<number>, EffectRedis.RedisError>
  ): Effect.Effect<Outcome, MessagingError.MessagingError> =>
    Effect.suspend(() => {
      const results: Array<Exit.Exit<void, MessagingError.MessagingError> | undefined> = []
      const pairs: Array<string> = []
      const sent: Array<number> = []
      const queue = receipts[0]?.queue
      for (let i = 0; i < receipts.length; i++) {
        const receipt = receipts[i]!
        if (receipt.provider !== provider || !isToken(receipt.token) || !QueueName.is(receipt.queue) || receipt.queue !== queue) {
          results.push(Exit.fail(foreign(receipt, operation)))
          continue
        }
        const token = receipt.token as Token
        pairs.push(token.entry, token.count)
        sent.push(i)
        results.push(undefined)
      }
      if (queue === undefined || sent.length === 0) return Effect.succeed(results as Outcome)
      return Effect.map(Effect.mapError(call(queue, pairs), fromRedis(operation, queue)), (held) => {
        sent.forEach((index, n) => {
          const receipt = receipts[index]!
          results[index] = held[n] === 1 ? Exit.void : Exit.fail(stale(receipt))
          if (operation !== "extend_visibility" || held[n] !== 1) onSettled(receipt)
        })
        return results as Outcome
      })
    })

  return {
    ack: (receipts) =>
      run("ack", receipts, (queue, pairs) => redis.eval(Scripts.ack)(keys.of(queue), group, pairs)),
    nack: (receipts, delayMs) =>
      run("nack", receipts, (queue, pairs) => redis.eval(Scripts.nack)(keys.of(queue), group, delayMs, pairs)),
    deadLetter: (receipts) =>
      run("dead_letter", receipts, (queue, pairs) =>
        redis.eval(Scripts.deadLetter)(keys.of(queue), keys.of(QueueName.deadLetter(queue)), group, pairs)),
    extend: (receipts, durationMs) =>
      run("extend_visibility", receipts, (queue, pairs) => redis.eval(Scripts.extend)(keys.of(queue), group, durationMs, pairs))
  }
}

/** The outcome of the single receipt of a one-receipt call. */
export const single = (outcome: Effect.Effect<Outcome, MessagingError.MessagingError>) =>
  Effect.flatMap(outcome, (exits) => exits[0]!)
