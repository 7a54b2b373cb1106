/**
 * PGMQ push: listener events become notifications. An inline payload is
 * claimed by id before it is handed on (if another consumer won, nothing is
 * delivered); signals become `Available`. The end of a subscription returns
 * the deliveries it claimed and has not emitted yet; what it emitted is the
 * subscriber's to settle.
 */
import { type Message, type MessagingError, MessageNotification, type QueueName } from "@conveyor/core"
import { Effect, Option, Stream } from "effect"
import type * as PgmqEvent from "../PgmqEvent.ts"

export interface Dependencies {
  readonly events: (queues: ReadonlyArray<QueueName.QueueName>) => Stream.Stream<PgmqEvent.PgmqEvent>
  /** Claims one visible message by id, with the payload the notification carried. */
  readonly claim: (
    queue: QueueName.QueueName,
    id: string,
    payload: unknown,
    visibilityMs: number
  ) => Effect.Effect<Option.Option<Message.QueuedMessage>, MessagingError.MessagingError>
  readonly release: (receipt: Message.Receipt) => Effect.Effect<void, MessagingError.MessagingError>
}

export const make = (dependencies: Dependencies) => {
  /** Deliveries claimed by live subscriptions and not yet emitted, one set per subscription. */
  const live = new Set<Set<Message.Receipt>>()

  /** Called once a delivery is settled: its subscription no longer returns it. */
  const forget = (receipt: Message.Receipt) =>
    Effect.sync(() => {
      for (const held of live) held.delete(receipt)
    })

  const toNotifications = (
    event: PgmqEvent.PgmqEvent,
    visibilityMs: number
  ): Effect.Effect<ReadonlyArray<MessageNotification.MessageNotification>> => {
    const queue = event.queueName as QueueName.QueueName
    const available = (id: Option.Option<string>, readyAt: Date) =>
      MessageNotification.Available({
        queue,
        messageId: id,
        visibleAt: readyAt.getTime() > Date.now() ? Option.some(readyAt) : Option.none()
      })
    switch (event._tag) {
      case "QueueCreated":
        return Effect.succeed([])
      case "MessageReady":
        return Effect.succeed([available(Option.some(event.msgId), event.readyAt)])
      case "BatchReady": {
        const listed = event.msgIds.map((id) => available(Option.some(id), event.readyAt))
        return Effect.succeed(
          event.messageCount > event.msgIds.length ? [...listed, available(Option.none(), event.readyAt)] : listed
        )
      }
      case "MessageWithPayload":
        return dependencies.claim(queue, event.msgId, event.message, visibilityMs).pipe(
          Effect.map(Option.match({
            onNone: () => [],
            onSome: (message) => [MessageNotification.Message({ message })]
          })),
          // A claim that failed still announces the message: the consumer claims it later.
          Effect.catch(() => Effect.succeed([available(Option.some(event.msgId), event.readyAt)]))
        )
    }
  }

  const subscribe = (queues: ReadonlyArray<QueueName.QueueName>, visibilityMs: number) =>
    Stream.unwrap(Effect.gen(function*() {
      const held = new Set<Message.Receipt>()
      yield* Effect.acquireRelease(
        Effect.sync(() => live.add(held)),
        () =>
          Effect.suspend(() => {
            live.delete(held)
            const receipts = [...held]
            held.clear()
            return Effect.forEach(receipts, (receipt) => Effect.ignore(dependencies.release(receipt)), {
              concurrency: "unbounded",
              discard: true
            })
          })
      )
      return dependencies.events(queues).pipe(
        Stream.mapEffect(
          (event) =>
            // A claim that reached the database is recorded, even if the stream is being interrupted.
            Effect.uninterruptible(Effect.tap(toNotifications(event, visibilityMs), (notifications) =>
              Effect.sync(() => {
                for (const n of notifications) if (n._tag === "Message") held.add(n.message.receipt)
              }))),
          { concurrency: 8 }
        ),
        Stream.flattenIterable,
        // Emitted: from here on the subscriber's, not returned when the subscription ends.
        Stream.tap((n) => Effect.sync(() => n._tag === "Message" && held.delete(n.message.receipt)))
      )
    }))

  return { subscribe, forget }
}
