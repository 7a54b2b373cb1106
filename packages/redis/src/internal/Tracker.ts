/**
 * The deliveries each subscription has claimed and not yet emitted, so that
 * ending a subscription returns them at once (DESIGN §3: what it holds
 * unemitted goes back when it ends) instead of leaving them claimed until
 * their deadline. What it emitted is the subscriber's to settle.
 */
import type { Message, QueueName } from "@conveyor/core"
import { Effect } from "effect"
import type { Settle } from "./Settle.ts"

export interface Held {
  /** Claimed by the subscription. */
  readonly add: (receipt: Message.Receipt) => void
  /** Handed to the subscriber: no longer the subscription's to return. */
  readonly emitted: (receipt: Message.Receipt) => void
}

interface HeldSet extends Held {
  readonly receipts: Set<Message.Receipt>
}

export interface Tracker {
  readonly open: () => Held
  /** Returns what `held` still holds (stale receipts are skipped by the script). */
  readonly close: (held: Held) => Effect.Effect<void>
}

export const make = (settle: Settle): Tracker => ({
  open: () => {
    const receipts = new Set<Message.Receipt>()
    const held: HeldSet = {
      receipts,
      add: (receipt) => receipts.add(receipt),
      emitted: (receipt) => receipts.delete(receipt)
    }
    return held
  },
  close: (held) =>
    Effect.suspend(() => {
      const { receipts } = held as HeldSet
      const byQueue = new Map<QueueName.QueueName, Array<Message.Receipt>>()
      for (const receipt of receipts) {
        const list = byQueue.get(receipt.queue) ?? []
        list.push(receipt)
        byQueue.set(receipt.queue, list)
      }
      receipts.clear()
      return Effect.forEach(byQueue.values(), (list) =>
        Effect.ignore(settle.nackAll(list.map((receipt) => ({ receipt, ms: 0 })))).pipe(
          Effect.andThen(Effect.logDebug(`Returned ${list.length} unemitted deliveries of a closed subscription`))
        ), { discard: true })
    })
})
