/**
 * The one service applications talk to. A provider (in-memory, PGMQ,
 * RabbitMQ) supplies it as a Layer; code written against it does not change
 * when the provider does.
 */
import { Context, type Duration, type Effect, type Exit, type Option, type Stream } from "effect"
import type { Headers, Json, MessageId, QueuedMessage, Receipt } from "./Message.ts"
import type { MessageNotification, PushHealth } from "./MessageNotification.ts"
import type { MessagingError } from "./MessagingError.ts"
import type { QueueName } from "./QueueName.ts"

export interface Capabilities {
  /** `message`: pushes full deliveries; `signal`: pushes "something is there"; `none`: poll only. */
  readonly push: "message" | "signal" | "none"
  /** Push can miss messages (e.g. NOTIFY while nobody listens), so a poll must back it up. */
  readonly requiresFallbackPolling: boolean
  readonly fallbackPollingInterval: Duration.Duration
  readonly fetchById: boolean
  readonly delayedDelivery: boolean
  /**
   * Set where delays count in whole steps of this much (rounded up: never early, up to a step
   * late) and the server shows a due message when it will, so no consumer can claim it at its
   * due instant (SQS: 1 s). Absent: the due time is kept to the millisecond and a Hybrid
   * consumer gets a delayed message within 20 ms of it (p99).
   */
  readonly delayPrecision?: Duration.Duration
  readonly deadLetter: boolean
  /**
   * Set where `receive` long polls: it honours `ReceiveOptions.waitTime` up to this long (SQS:
   * 20 s, in whole seconds rounded down). Absent: `waitTime` is ignored and `receive` returns
   * at once.
   */
  readonly maxWaitTime?: Duration.Duration
}

export interface QueueOptions {
  /** Provider-specific flavour; RabbitMQ honours `quorum`, the others ignore it. */
  readonly kind?: "classic" | "quorum"
}

export interface SendOptions {
  /** Invisible to receive and to push until this much time has passed. */
  readonly delay?: Duration.Input
  readonly headers?: Headers
}

export interface ReceiveOptions {
  /** At most this many messages (default 1). */
  readonly max?: number
  readonly visibilityTimeout: Duration.Input
  /**
   * Wait up to this long for a first message when none is visible (long polling), on a provider
   * declaring `capabilities.maxWaitTime` (at most that long); others ignore it.
   */
  readonly waitTime?: Duration.Input
}

export interface FetchOptions {
  readonly visibilityTimeout: Duration.Input
}

export interface NackOptions {
  /** `true` (default): visible again, after `delay`. `false`: dead-lettered. */
  readonly requeue?: boolean
  readonly delay?: Duration.Input
}

export interface SubscribeOptions {
  readonly visibilityTimeout: Duration.Input
  /** How many unacked deliveries the subscriber will hold (AMQP prefetch). */
  readonly prefetch?: number
}

export interface QueueStats {
  readonly queue: QueueName
  /** Every message in the queue, visible, delayed or in flight. */
  readonly depth: number
  readonly visible: number
  readonly inFlight?: number
  readonly delayed?: number
  readonly oldestAgeMs?: number
  readonly deadLettered?: number
}

export interface HealthReport {
  readonly provider: string
  readonly healthy: boolean
  readonly latencyMs: number
  readonly push: PushHealth["_tag"]
  readonly detail?: string
}

export class Messaging extends Context.Service<Messaging, {
  readonly provider: string
  readonly capabilities: Capabilities
  readonly ensureQueue: (queue: QueueName, options?: QueueOptions) => Effect.Effect<void, MessagingError>
  readonly deleteQueue: (queue: QueueName) => Effect.Effect<void, MessagingError>
  readonly queueExists: (queue: QueueName) => Effect.Effect<boolean, MessagingError>
  readonly listQueues: Effect.Effect<ReadonlyArray<QueueName>, MessagingError>
  /** Returns how many messages were removed. */
  readonly purgeQueue: (queue: QueueName) => Effect.Effect<number, MessagingError>
  readonly send: (
    queue: QueueName,
    payload: Json,
    options?: SendOptions
  ) => Effect.Effect<MessageId, MessagingError>
  /** Ids in input order; one round trip where the provider allows. */
  readonly sendBatch: (
    queue: QueueName,
    payloads: ReadonlyArray<Json>,
    options?: SendOptions
  ) => Effect.Effect<ReadonlyArray<MessageId>, MessagingError>
  /**
   * Claims up to `max` visible messages; never blocks on an empty queue, except for a
   * `waitTime` on a provider that long polls (then it answers as soon as a message is visible).
   */
  readonly receive: (queue: QueueName, options: ReceiveOptions) => Effect.Effect<ReadonlyArray<QueuedMessage>, MessagingError>
  /** Claims one message by id if it is visible now. */
  readonly fetch: (
    queue: QueueName,
    id: MessageId,
    options: FetchOptions
  ) => Effect.Effect<Option.Option<QueuedMessage>, MessagingError>
  readonly ack: (receipt: Receipt) => Effect.Effect<void, MessagingError>
  /**
   * Acks many receipts in as few round trips as the provider allows (one per queue, or per
   * channel), answering one `Exit` per receipt, in input order: a stale or invalid receipt fails
   * only its own, and a round trip that fails fails only the receipts it carried. `Consumer.run`
   * acks what its workers handled this way.
   */
  readonly ackAll: (receipts: ReadonlyArray<Receipt>) => Effect.Effect<ReadonlyArray<Exit.Exit<void, MessagingError>>>
  readonly nack: (receipt: Receipt, options?: NackOptions) => Effect.Effect<void, MessagingError>
  readonly extendVisibility: (
    receipt: Receipt,
    duration: Duration.Input
  ) => Effect.Effect<void, MessagingError>
  readonly stats: (queue: QueueName) => Effect.Effect<QueueStats, MessagingError>
  /** Never fails: problems are reported in the value. */
  readonly healthCheck: Effect.Effect<HealthReport>
  readonly subscribe: (
    queues: ReadonlyArray<QueueName>,
    options: SubscribeOptions
  ) => Stream.Stream<MessageNotification, MessagingError>
  /** The push path's state; emits the current state first, then every change. */
  readonly pushHealth: Stream.Stream<PushHealth>
}>()("@conveyor/core/Messaging") {}
