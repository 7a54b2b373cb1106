/**
 * SQS counts delays and visibility timeouts in whole seconds and caps them
 * (DelaySeconds ≤ 900, VisibilityTimeout ≤ 43200). Durations are rounded
 * *up*: a message is never visible earlier than asked. Over the cap is
 * refused here: some emulators accept it (fauxqs takes a delay of 901 s),
 * SQS does not, and a producer's delay must never be cut short silently.
 */
import type { Duration } from "effect"
import { Effect } from "effect"
import { Durations, MessagingError } from "@conveyor/core"
import { provider } from "./errors.ts"

export const maxDelaySeconds = 900
export const maxVisibilitySeconds = 43_200
/** SQS's longest long poll (WaitTimeSeconds). */
export const maxWaitSeconds = 20
/** SQS's ceiling for a receive or a batch call. */
export const maxBatch = 10
/** SQS's default MaximumMessageSize: 256 KiB. Queues take up to 1 MiB. */
export const defaultMaxBytes = 256 * 1024
export const largestMaxBytes = 1024 * 1024

const seconds = (what: string, operation: string, max: number) => (input: Duration.Input | undefined) =>
  Effect.suspend(() => {
    const s = Math.ceil(Durations.millis(input) / 1000)
    return s <= max ? Effect.succeed(s) : Effect.fail(
      new MessagingError.Unsupported({
        operation,
        provider,
        message: `SQS ${what} at most ${max} seconds; ${s} seconds were asked for`
      })
    )
  })

export const delaySeconds = seconds("delays a message", "send", maxDelaySeconds)
export const visibilitySeconds = (operation: string) => seconds("keeps a message invisible", operation, maxVisibilitySeconds)

/** A receive's wait in whole seconds, rounded *down* (never longer than asked), at most 20. */
export const waitSeconds = (input: Duration.Input | undefined) =>
  Math.min(maxWaitSeconds, Math.max(0, Math.floor(Durations.millis(input ?? 0) / 1000)))
