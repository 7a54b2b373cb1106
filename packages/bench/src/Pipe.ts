/**
 * What every workload runs against: a queue opened by one subject (Conveyor
 * on some provider, the provider's raw driver, or a peer library). The
 * workloads in Workloads.ts are written once against this, so adding a
 * provider means writing its subjects, not its workloads.
 */
import type { Effect, Scope } from "effect"

/** One message: hop `hop` of chain `chain`, sent at `sentAt` (`performance.now()`, same process). */
export type Hop = {
  readonly chain: number
  readonly hop: number
  readonly sentAt: number
}

/**
 * What a handler does with a message, called the moment the handler starts:
 * records what the workload measures and returns the chain's next message,
 * which the subject sends from inside the handler (before settling the
 * message), or `undefined`.
 */
export type Step = (hop: Hop) => Hop | undefined

export interface Pipe {
  /** One message, from outside any handler; done once the subject says it is stored. */
  readonly send: (hop: Hop) => Effect.Effect<void, unknown>
  /** Many messages in as few round trips as the subject allows. */
  readonly sendBatch: (hops: ReadonlyArray<Hop>) => Effect.Effect<void, unknown>
  /**
   * Starts `concurrency` concurrent handlers calling `step` on every message
   * and `settled` once each message is acked (or, where the subject gives no
   * such signal, once its handler returned). Stops when the scope closes.
   */
  readonly consume: (concurrency: number, step: Step, settled: () => void) => Effect.Effect<void, unknown, Scope.Scope>
}

export type Role = "conveyor" | "raw" | "peer"

/** One side of a comparison. */
export interface Subject {
  /** Short, unique within its provider: `conveyor`, `raw`, `graphile-worker`, … */
  readonly name: string
  readonly role: Role
  /** How it is set up, in a line: printed under the section so numbers can be read. */
  readonly config: string
  /** W1 samples are scaled by this (a polling peer waits ~1 s per sample). */
  readonly latencySampleScale?: number
  /** At most this many rounds (a subject whose numbers are its poll interval needs no median). */
  readonly maxRounds?: number
  /** Connects, once per measurement process; closed with the scope. */
  readonly connect: Effect.Effect<Connection, unknown, Scope.Scope>
}

export interface Connection {
  /** A fresh queue (`label` says what for), removed when the scope closes. */
  readonly open: (label: string) => Effect.Effect<Pipe, unknown, Scope.Scope>
}
