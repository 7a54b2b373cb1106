/**
 * One claim step on one queue (see scripts.claim), decoded into messages.
 * An entry that is not a Conveyor message (no payload field, not JSON: another
 * writer's entry) is dead-lettered at once: kept, never retried forever.
 * The step runs uninterruptibly: once the script has claimed, its messages
 * must reach the caller, or they would sit claimed by nobody until their
 * deadline.
 */
import type { Message, MessagingError, QueueName } from "@conveyor/core"
import { Effect } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { type ClaimReply, claimReply, toQueued } from "./Codec.ts"
import { fromRedis } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./scripts.ts"
import type { Settle } from "./Settle.ts"

export interface Claim {
  readonly reply: ClaimReply
  readonly messages: ReadonlyArray<Message.QueuedMessage>
}

export type ClaimStep = (
  queue: QueueName.QueueName,
  max: number,
  visibilityMs: number
) => Effect.Effect<Claim, MessagingError.MessagingError>

export const make = (
  redis: EffectRedis.Redis["Service"],
  keys: Keys,
  group: string,
  consumer: string,
  settle: Settle
): ClaimStep =>
(queue, max, visibilityMs) =>
  redis.eval(Scripts.claim)(keys.of(queue), group, consumer, max, visibilityMs).pipe(
    Effect.mapError(fromRedis("receive", queue)),
    Effect.flatMap((raw) => {
      const reply = claimReply(raw)
      const visibleUntil = new Date(reply.now + visibilityMs)
      const messages: Array<Message.QueuedMessage> = []
      const foreign: Array<Message.Receipt> = []
      for (const claimed of reply.claimed) {
        const message = toQueued(queue, claimed, visibleUntil)
        if (typeof message !== "string") {
          messages.push(message)
          continue
        }
        foreign.push({ provider: "redis", queue, messageId: claimed.entry, token: { entry: claimed.entry, count: String(claimed.count) } })
      }
      const result: Claim = { reply, messages }
      return foreign.length === 0 ? Effect.succeed(result) : settle.deadLetterAll(foreign).pipe(
        Effect.andThen(Effect.logWarning(`Dead-lettered ${foreign.length} entries of queue ${queue} that are not Conveyor messages`)),
        Effect.catch((error) => Effect.logWarning(`Could not dead-letter foreign entries of queue ${queue}: ${error.message}`)),
        Effect.as(result)
      )
    }),
    Effect.uninterruptible
  )
