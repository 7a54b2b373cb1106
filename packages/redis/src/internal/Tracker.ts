/**
 * The deliveries each subscription has emitted and nobody has settled yet,
 * so that ending a subscription returns them at once (DESIGN §3: interrupting
 * a subscription releases what it holds) instead of leaving them claimed
 * until their deadline. Settling a receipt anywhere forgets it.
 */
import type { Message, QueueName } from "@conveyor/core"
import { Effect } from "effect"
import type { Token } from "./Codec.ts"
import type { Settle } from "./Settle.ts"

export interface Held {
  readonly add: (receipt: Message.Receipt) => void
}

interface HeldSet extends Held {
  readonly receipts: Map<string, Message.Receipt>
}

export interface Tracker {
  readonly open: () => Held
  /** Returns what `held` still holds (stale receipts are skipped by the script). */
  readonly close: (held: Held) => Effect.Effect<void>
  readonly settled: (receipt: Message.Receipt) => void
}

const keyOf = (receipt: Message.Receipt) => {
  const token = receipt.token as Token
  return `${receipt.queue}\n${token.entry}\n${token.count}`
}

export const make = (settle: () => Settle): Tracker => {
  const owners = new Map<string, Map<string, Message.Receipt>>()
  return {
    open: () => {
      const receipts = new Map<string, Message.Receipt>()
      const held: HeldSet = {
        receipts,
        add: (receipt) => {
          const key = keyOf(receipt)
          receipts.set(key, receipt)
          owners.set(key, receipts)
        }
      }
      return held
    },
    settled: (receipt) => {
      if (owners.size === 0) return
      const key = keyOf(receipt)
      const receipts = owners.get(key)
      if (receipts === undefined) return
      receipts.delete(key)
      owners.delete(key)
    },
    close: (held) =>
      Effect.suspend(() => {
        const { receipts } = held as HeldSet
        const byQueue = new Map<QueueName.QueueName, Array<Message.Receipt>>()
        for (const [key, receipt] of receipts) {
          owners.delete(key)
          const list = byQueue.get(receipt.queue) ?? []
          list.push(receipt)
          byQueue.set(receipt.queue, list)
        }
        receipts.clear()
        return Effect.forEach(byQueue.values(), (list) =>
          Effect.ignore(settle().nackAll(list.map((receipt) => ({ receipt, ms: 0 })))).pipe(
            Effect.andThen(Effect.logDebug(`Returned ${list.length} unsettled deliveries of a closed subscription`))
          ), { discard: true })
      })
  }
}
