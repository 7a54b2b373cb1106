/**
 * What this layer knows about the deliveries it handed out, so a stale
 * receipt is refused without asking SQS (whose answers cannot be trusted for
 * this: DeleteMessage with an expired or already used handle may succeed).
 *
 * A receipt carries the instant its claim lapses, measured from *before* the
 * receive request, so it lapses here no later than on the server; the table
 * adds what the receipt cannot carry: extensions, and whether it was settled.
 * Detected here: a lapsed visibility timeout, a second settlement, a receipt
 * of another provider. Left to SQS (ReceiptHandleIsInvalid, MessageNotInflight):
 * a receipt of another process settled there, or a queue purged or deleted.
 */
import { Clock, Effect } from "effect"
import { type Message, MessagingError, Receipts } from "@conveyor/core"
import type { Attributes } from "./codec.ts"
import { provider } from "./errors.ts"

export interface Token {
  readonly handle: string
  /** Epoch ms after which the claim is no longer held. */
  readonly deadline: number
  /** Kept so that dead-lettering can copy the message as it was. */
  readonly body: string
  readonly attributes: Attributes
}

interface Entry {
  deadline: number
  /** A settlement is under way or done: a second one is stale. */
  settling: boolean
}

const pruneEveryMs = 1_000

const isToken = (token: unknown): token is Token =>
  typeof token === "object" && token !== null &&
  typeof (token as Token).handle === "string" && typeof (token as Token).deadline === "number" &&
  typeof (token as Token).body === "string" && typeof (token as Token).attributes === "object" &&
  (token as Token).attributes !== null

export interface Holdings {
  /** Records a claim made by this layer; `now` is the current time, for pruning lapsed entries. */
  readonly issue: (queue: Message.Receipt["queue"], messageId: string, token: Token, now: number) => Message.Receipt
  /** The receipt's token if the claim is held; marks it settling so no other settlement can start. */
  readonly beginSettle: (receipt: Message.Receipt, operation: string) => Effect.Effect<Token, MessagingError.MessagingError>
  /** The settlement failed for a reason other than staleness: the claim may still be settled. */
  readonly abandonSettle: (token: Token) => void
  /** The receipt's token if the claim is held, without starting a settlement (extend). */
  readonly check: (receipt: Message.Receipt, operation: string) => Effect.Effect<Token, MessagingError.MessagingError>
  readonly extend: (token: Token, deadline: number) => void
  /** When the claim lapses, extensions included. */
  readonly deadlineOf: (token: Token) => number
  /** Whether this layer still holds the claim unsettled at `now`. */
  readonly isOpen: (receipt: Message.Receipt, now: number) => boolean
}

export const make = (): Holdings => {
  const entries = new Map<string, Entry>()
  let prunedAt = 0

  const prune = (now: number) => {
    if (now - prunedAt < pruneEveryMs) return
    prunedAt = now
    for (const [handle, entry] of entries) if (entry.deadline < now) entries.delete(handle)
  }

  const held = (receipt: Message.Receipt, operation: string, mark: boolean) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<Token, MessagingError.MessagingError> => {
      if (receipt.provider !== provider) return Effect.fail(Receipts.foreign(receipt, provider, operation))
      const token = receipt.token
      if (!isToken(token)) return Effect.fail(Receipts.stale(receipt))
      const entry = entries.get(token.handle)
      const deadline = entry?.deadline ?? token.deadline
      if (entry?.settling === true || now >= deadline) return Effect.fail(Receipts.stale(receipt))
      if (mark) {
        if (entry === undefined) entries.set(token.handle, { deadline, settling: true })
        else entry.settling = true
      }
      return Effect.succeed(token)
    })

  return {
    issue: (queue, messageId, token, now) => {
      prune(now)
      entries.set(token.handle, { deadline: token.deadline, settling: false })
      return { provider, queue, messageId, token }
    },
    beginSettle: (receipt, operation) => held(receipt, operation, true),
    abandonSettle: (token) => {
      const entry = entries.get(token.handle)
      if (entry !== undefined) entry.settling = false
    },
    check: (receipt, operation) => held(receipt, operation, false),
    extend: (token, deadline) => {
      const entry = entries.get(token.handle)
      if (entry === undefined) entries.set(token.handle, { deadline, settling: false })
      else entry.deadline = deadline
    },
    deadlineOf: (token) => entries.get(token.handle)?.deadline ?? token.deadline,
    isOpen: (receipt, now) => {
      if (!isToken(receipt.token)) return false
      const entry = entries.get(receipt.token.handle)
      return entry !== undefined && !entry.settling && now < entry.deadline
    }
  }
}
