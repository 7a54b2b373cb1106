/**
 * The push health of a layer (`pushHealth`): `Degraded` when a subscription's
 * poll cannot reach the endpoint, `Reconnected` as soon as any call to it
 * succeeds again — a receive, a send or a poll. All of them go to the one
 * endpoint, so any answer proves it is back. Waiting for a subscription's own
 * poll instead would report the recovery late: while push is degraded the
 * consumer's fast poll (`receive`) takes what the restarted server holds, and a
 * long poll parked on the emptied queue answers only when its wait runs out.
 */
import { MessageNotification, type MessagingError } from "@conveyor/core"
import { Effect, Option, Stream, SubscriptionRef } from "effect"

export interface Health {
  readonly changes: Stream.Stream<MessageNotification.PushHealth>
  readonly current: Effect.Effect<MessageNotification.PushHealth["_tag"]>
  /** A subscription's poll could not reach the endpoint. */
  readonly degraded: (error: MessagingError.MessagingError) => Effect.Effect<void>
  /** Completes once push health is not `Degraded` (at once when it is not now). */
  readonly recovered: Effect.Effect<void>
  /** `effect`, which reports a recovery when it succeeds (it reached the endpoint). */
  readonly reaching: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make: Effect.Effect<Health> = Effect.map(
  SubscriptionRef.make<MessageNotification.PushHealth>(MessageNotification.PushHealth.Connected()),
  (ref) => {
    // Only changes are published: pushHealth emits transitions, not every call.
    const degraded = (error: MessagingError.MessagingError) =>
      SubscriptionRef.updateSome(ref, (state) =>
        state._tag === "Degraded" ? Option.none() : Option.some(MessageNotification.PushHealth.Degraded({ reason: error.message })))
    const markReconnected = SubscriptionRef.updateSome(ref, (state) =>
      state._tag === "Degraded" ? Option.some(MessageNotification.PushHealth.Reconnected()) : Option.none())
    // A plain read first: every call passes here, and only one after an outage needs the ref's lock.
    const reached = Effect.flatMap(SubscriptionRef.get(ref), (state) => state._tag === "Degraded" ? markReconnected : Effect.void)
    return {
      changes: SubscriptionRef.changes(ref),
      current: Effect.map(SubscriptionRef.get(ref), (state) => state._tag),
      degraded,
      recovered: Effect.asVoid(Stream.runHead(Stream.filter(SubscriptionRef.changes(ref), (state) => state._tag !== "Degraded"))),
      reaching: (effect) => Effect.tap(effect, () => reached)
    }
  }
)
