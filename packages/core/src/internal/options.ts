/**
 * The consumer's options and their defaults, resolved once: `Consumer.stream`
 * and `Consumer.run` read the resolved values and the intake receives them,
 * so a default lives in one place.
 */
import { Duration, Schedule } from "effect"
import { type DeploymentMode, effective } from "../DeploymentMode.ts"
import type { Capabilities } from "../Messaging.ts"

export interface StreamOptions {
  /** Default `Hybrid`, narrowed by `DeploymentMode.effective`. */
  readonly mode?: DeploymentMode
  /** The fast poll cadence: PollingOnly, and Hybrid while push is degraded (default every 100 ms). */
  readonly poll?: Schedule.Schedule<unknown>
  /** Messages claimed per receive (default 16); the push prefetch of a stream. */
  readonly batchSize?: number
  /** How long a claimed message stays invisible to others (default 30 s). */
  readonly visibilityTimeout?: Duration.Input
}

export interface RunOptions extends StreamOptions {
  /** Handlers running at once (default 1). */
  readonly concurrency?: number
  /** A message failing on this delivery is dead-lettered (default 5). */
  readonly maxReceives?: number
  /** Delay before retry n (n = 1, 2, ...); when the schedule ends, the message is dead-lettered. */
  readonly retryBackoff?: Schedule.Schedule<unknown>
  /** How long in-flight handlers may finish after shutdown begins (default 5 s). */
  readonly shutdownGrace?: Duration.Input
}

export interface Intake {
  readonly mode: DeploymentMode
  readonly poll: Schedule.Schedule<unknown>
  readonly batchSize: number
  readonly visibilityTimeout: Duration.Duration
  /** The healthy Hybrid consumer's sweep period: the provider's fallback polling interval. */
  readonly fallback: Duration.Duration
  /**
   * Claims of `batchSize` the poll path keeps in flight while a queue drains: one for a
   * stream, enough to keep `concurrency` handlers busy for `run`.
   */
  readonly claimsInFlight: number
  /**
   * What the subscription may hold unsettled (AMQP prefetch): a batch for a stream; for
   * `run`, its running handlers and a full inbox, so a handler never waits for an ack's round
   * trip to free a delivery.
   */
  readonly prefetch: number
}

export interface Run extends Intake {
  readonly concurrency: number
  readonly maxReceives: number
  readonly retryBackoff: Schedule.Schedule<unknown>
  readonly shutdownGrace: Duration.Duration
}

export const intake = (options: StreamOptions, capabilities: Capabilities): Intake => ({
  mode: effective(options.mode ?? "Hybrid", capabilities),
  poll: options.poll ?? Schedule.spaced("100 millis"),
  batchSize: Math.max(1, options.batchSize ?? 16),
  visibilityTimeout: Duration.fromInputUnsafe(options.visibilityTimeout ?? "30 seconds"),
  fallback: capabilities.fallbackPollingInterval,
  claimsInFlight: 1,
  prefetch: Math.max(1, options.batchSize ?? 16)
})

export const run = (options: RunOptions, capabilities: Capabilities): Run => {
  const resolved = intake(options, capabilities)
  const concurrency = Math.max(1, options.concurrency ?? 1)
  return {
    ...resolved,
    claimsInFlight: Math.ceil(concurrency / resolved.batchSize),
    prefetch: concurrency + resolved.batchSize,
    concurrency,
    maxReceives: options.maxReceives ?? 5,
    retryBackoff: options.retryBackoff ??
      Schedule.min([Schedule.exponential("1 second", 2), Schedule.spaced("5 minutes")]),
    shutdownGrace: Duration.fromInputUnsafe(options.shutdownGrace ?? "5 seconds")
  }
}
