/**
 * Settling claims: ack, nack (requeue or dead-letter) and extend. Concurrent
 * calls of one operation on one queue coalesce (core's `Batching`) into one
 * script call, which checks for every receipt, in the same atomic step, that
 * it still names the live claim (deadline not passed, delivery count
 * unchanged); the others are `StaleReceipt`, and never touch the claim that
 * replaced them.
 */
import { Batching, type Message, type MessagingError, QueueName, Receipts } from "@conveyor/core"
import { Effect, Exit } from "effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { isToken, provider, type Token } from "./Codec.ts"
import { fromRedis } from "./errors.ts"
import type { Keys } from "./Keys.ts"
import * as Scripts from "./settleScripts.ts"

export type Outcome = ReadonlyArray<Exit.Exit<void, MessagingError.MessagingError>>

/** A receipt with the milliseconds its operation carries (nack delay, extension); 0 where none. */
export interface Timed {
  readonly receipt: Message.Receipt
  readonly ms: number
}

export interface Settle {
  readonly ack: (receipt: Message.Receipt) => Effect.Effect<void, MessagingError.MessagingError>
  /** Acks of receipts of any queues, already gathered: one script call per queue (`Messaging.ackAll`). */
  readonly ackAll: (receipts: ReadonlyArray<Message.Receipt>) => Effect.Effect<Outcome>
  readonly nack: (receipt: Message.Receipt, delayMs: number) => Effect.Effect<void, MessagingError.MessagingError>
  readonly deadLetter: (receipt: Message.Receipt) => Effect.Effect<void, MessagingError.MessagingError>
  readonly extend: (receipt: Message.Receipt, durationMs: number) => Effect.Effect<void, MessagingError.MessagingError>
  /** Nacks of receipts of one queue in one call (returning a closed subscription's deliveries). */
  readonly nackAll: (items: ReadonlyArray<Timed>) => Effect.Effect<Outcome, MessagingError.MessagingError>
  /** Dead-letters receipts of one queue in one call (entries that are not Conveyor messages). */
  readonly deadLetterAll: (receipts: ReadonlyArray<Message.Receipt>) => Effect.Effect<Outcome, MessagingError.MessagingError>
}

export const make = (
  redis: EffectRedis.Redis["Service"],
  keys: Keys,
  group: string,
  retryConnection: <A>(effect: Effect.Effect<A, MessagingError.MessagingError>) => Effect.Effect<A, MessagingError.MessagingError>
): Effect.Effect<Settle> =>
  Effect.gen(function*() {
    /** Checks the receipts (never sending a forged one), runs `call` on the rest, one Exit per item. */
    const run = (
      operation: string,
      items: ReadonlyArray<Timed>,
      call: (queue: QueueName.QueueName, args: ReadonlyArray<string | number>) => Effect.Effect<ReadonlyArray<number>, EffectRedis.RedisError>
    ): Effect.Effect<Outcome, MessagingError.MessagingError> =>
      Effect.suspend(() => {
        const results: Array<Exit.Exit<void, MessagingError.MessagingError> | undefined> = []
        const args: Array<string | number> = []
        const sent: Array<number> = []
        const queue = items[0]?.receipt.queue
        // One queue per call: its name is checked once, and every receipt must name it.
        const named = queue !== undefined && QueueName.is(queue)
        items.forEach(({ ms, receipt }, i) => {
          if (receipt.provider !== provider || !isToken(receipt.token) || !named || receipt.queue !== queue) {
            results.push(Exit.fail(Receipts.foreign(receipt, provider, operation)))
            return
          }
          const token = receipt.token as Token
          args.push(token.entry, token.count)
          if (operation === "nack" || operation === "extend_visibility") args.push(Math.ceil(ms))
          sent.push(i)
          results.push(undefined)
        })
        if (queue === undefined || sent.length === 0) return Effect.succeed(results as Outcome)
        return Effect.map(Effect.mapError(call(queue as QueueName.QueueName, args), fromRedis(operation, queue)), (held) => {
          sent.forEach((index, n) => {
            results[index] = held[n] === 1 ? Exit.void : Exit.fail(Receipts.stale(items[index]!.receipt))
          })
          return results as Outcome
        })
      })

    const untimed = (receipts: ReadonlyArray<Message.Receipt>) => receipts.map((receipt) => ({ receipt, ms: 0 }))

    const ackQueue = (receipts: ReadonlyArray<Message.Receipt>) =>
      run("ack", untimed(receipts), (queue, args) => redis.eval(Scripts.ack)(keys.of(queue), group, args as ReadonlyArray<string>))
    const nackAll = (items: ReadonlyArray<Timed>) =>
      run("nack", items, (queue, args) => redis.eval(Scripts.nack)(keys.of(queue), group, args))
    const deadLetterAll = (receipts: ReadonlyArray<Message.Receipt>) =>
      run("dead_letter", untimed(receipts), (queue, args) =>
        redis.eval(Scripts.deadLetter)(keys.of(queue), keys.of(QueueName.deadLetter(queue)), group, args as ReadonlyArray<string>))
    const extendAll = (items: ReadonlyArray<Timed>) =>
      run("extend_visibility", items, (queue, args) => redis.eval(Scripts.extend)(keys.of(queue), group, args))

    const ackKey = (receipt: Message.Receipt) => `ack:${receipt.queue}`
    const ack = yield* Batching.make<Message.Receipt, void, MessagingError.MessagingError>({ key: ackKey, run: ackQueue })
    // A round trip cut off by a connection loss is tried again, as a single ack is (Redis.ts).
    // Only acks pass through it: one round trip per queue.
    const ackAll = Batching.all({ key: (receipt: Message.Receipt) => receipt.queue, run: (receipts) => retryConnection(ackQueue(receipts)) })
    const nack = yield* Batching.make<Timed, void, MessagingError.MessagingError>({
      key: (item) => `nack:${item.receipt.queue}`,
      run: nackAll
    })
    const deadLetter = yield* Batching.make<Message.Receipt, void, MessagingError.MessagingError>({
      key: (receipt) => `dead_letter:${receipt.queue}`,
      run: deadLetterAll
    })
    const extend = yield* Batching.make<Timed, void, MessagingError.MessagingError>({
      key: (item) => `extend:${item.receipt.queue}`,
      run: extendAll
    })

    return {
      ack,
      ackAll,
      nack: (receipt, ms) => nack({ receipt, ms }),
      deadLetter,
      extend: (receipt, ms) => extend({ receipt, ms }),
      nackAll,
      deadLetterAll
    }
  })
