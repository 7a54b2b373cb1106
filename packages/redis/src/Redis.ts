/**
 * The Redis Streams provider of `Messaging`, on Effect's own Redis service
 * (`effect/persistence/Redis`, node-redis through `@effect/platform-node`).
 * A queue is a stream with one consumer group per layer `group`; claims are
 * the group's pending entries, given per-delivery deadlines in a sorted set
 * (internal/Keys, internal/scripts). Every step that touches several keys is
 * one Lua script, so claims, settles, delays and dead-lettering are atomic.
 *
 * What Streams cannot do exactly, and how it is handled:
 * - visibility timeouts: Redis knows only idle times, so deadlines live in a
 *   sorted set and an expired claim is taken back by the next claim step
 *   (receive, or a subscription: at its due time when it made the claim, within
 *   `blockTimeout` when another consumer did); a subscription's blocking
 *   XREADGROUP claims before the deadline exists (registered right after the
 *   read), and one whose reply was lost gets a deadline from the janitor;
 * - `fetch` by id: a group hands out entries in order only, so it is
 *   `Unsupported` (capabilities.fetchById is false);
 * - delayed sends wait in a sorted set and enter the stream when due: their
 *   message id is assigned at send (a UUID) and kept in a field, since the
 *   entry id is only known when the message enters the stream; a delayed
 *   message is ordered by when it fell due, not when it was sent;
 * - a nacked message keeps its entry (and its place) in the pending list until
 *   its delay passes, so receiveCount carries on exactly;
 * - `purge` recreates the stream, and with it drops other groups' positions.
 */
import { Config, Duration, Effect, Layer, type Redacted, Schedule, type Scope, Stream, SubscriptionRef } from "effect"
import * as EffectRedis from "effect/persistence/Redis"
import { Durations, HealthCheck, type Message, MessageNotification, Messaging, MessagingError, Observability, Payload, QueueName, Receipts, Reconnect } from "@conveyor/core"
import * as Claim from "./internal/Claim.ts"
import * as Client from "./internal/Client.ts"
import { provider } from "./internal/Codec.ts"
import { fromRedis } from "./internal/errors.ts"
import * as Keys from "./internal/Keys.ts"
import * as Queues from "./internal/Queues.ts"
import * as Registrar from "./internal/Registrar.ts"
import * as Send from "./internal/Send.ts"
import * as Settle from "./internal/Settle.ts"
import * as Subscription from "./internal/Subscription.ts"
import * as Tracker from "./internal/Tracker.ts"

export interface ProviderOptions {
  /** Prepended to every key (default `conveyor:`), so several applications can share one Redis. */
  readonly prefix?: string | undefined
  /** The consumer group: layers with the same group compete for messages, other groups each get every message (default `conveyor`). */
  readonly group?: string | undefined
  /** This layer's consumer in the group (default `conveyor-<pid>-<random>`), shown by XINFO CONSUMERS. */
  readonly consumer?: string | undefined
  /** Largest encoded payload accepted by `send` (default `Payload.defaultMaxBytes`, 1 MiB). */
  readonly maxPayloadBytes?: number | undefined
  /**
   * Delays between attempts when the connection fails: connecting at start,
   * a subscription reserving its blocking connection again, a command cut off
   * by a connection loss (default: exponential from 100 ms, jittered, each at
   * most 5 s, 10 retries). When it ends the operation fails with `ConnectionError`.
   */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** Messages a subscription claims per queue at a time unless it states its own prefetch (default 32). */
  readonly prefetch?: number | undefined
  /** Longest one blocking read waits before a subscription looks for expired claims (default 1 s). */
  readonly blockTimeout?: Duration.Input | undefined
}

export interface RedisOptions extends ProviderOptions {
  /** `redis://[user:password@]host:port[/db]`; the password never appears in errors or logs. */
  readonly url: Redacted.Redacted<string>
  /** Subscriptions open at once per layer, each on its own blocking connection (default 100). */
  readonly maxSubscriptions?: number | undefined
  /** The client name of every connection (CLIENT SETNAME; default `conveyor-<pid>`), shown by CLIENT LIST. */
  readonly connectionName?: string | undefined
}

const defaultPrefix = "conveyor:"
const defaultGroup = "conveyor"
const defaultPrefetch = 32
const defaultBlockTimeout = Duration.seconds(1)
const defaultMaxSubscriptions = 100

export const capabilities: Messaging.Capabilities = {
  push: "message",
  requiresFallbackPolling: false,
  fallbackPollingInterval: Duration.seconds(30),
  fetchById: false,
  delayedDelivery: true,
  deadLetter: true
}


const namesOf = (options: ProviderOptions) => ({
  prefix: options.prefix ?? defaultPrefix,
  group: options.group ?? defaultGroup,
  consumer: options.consumer ?? `conveyor-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
})

/** The provider on the `Redis` service in context (its connection is the caller's). */
export const make = (
  options: ProviderOptions = {}
): Effect.Effect<Messaging.Messaging["Service"], MessagingError.ProviderError, Scope.Scope | EffectRedis.Redis> =>
  Effect.gen(function*() {
    const redis = yield* EffectRedis.Redis
    const { consumer, group, prefix } = namesOf(options)
    yield* Keys.validate({ prefix, group, consumer })
    const keys = Keys.make(prefix, group)
    const maxBytes = options.maxPayloadBytes ?? Payload.defaultMaxBytes
    const reconnect = options.reconnect ?? Reconnect.defaultSchedule

    const retryConnection = Reconnect.retrying(reconnect)

    const settle = yield* Settle.make(redis, keys, group, retryConnection)
    const tracker = Tracker.make(settle)
    const registrar = yield* Registrar.make(redis, keys, group, retryConnection)
    const claims = Claim.make(redis, keys, group, consumer, settle)
    const health = yield* SubscriptionRef.make<MessageNotification.PushHealth>(MessageNotification.PushHealth.Connected())
    const queues = Queues.make(redis, keys, group)
    const { send, sendBatch } = yield* Send.make(redis, keys, maxBytes, retryConnection)

    const receive = Effect.fnUntraced(function*(name: QueueName.QueueName, opts: Messaging.ReceiveOptions) {
      const queue = yield* QueueName.make(name)
      const visibilityMs = Math.ceil(Durations.millis(opts.visibilityTimeout))
      const max = Math.max(1, Math.floor(opts.max ?? 1))
      return (yield* retryConnection(claims.step(queue, max, visibilityMs))).messages
    })

    const fetch = (_queue: QueueName.QueueName, _id: Message.MessageId, _opts: Messaging.FetchOptions) =>
      Effect.fail(
        new MessagingError.Unsupported({
          operation: "fetch",
          provider,
          message: "Redis Streams cannot claim a message by id (a group hands out entries in order); use receive or subscribe"
        })
      )

    // Settles cut off by a connection loss are tried again: one that did reach the server
    // then answers StaleReceipt (already settled), one that did not is not left to time out.
    const ack = (receipt: Message.Receipt) => retryConnection(settle.ack(receipt))

    const nack = (receipt: Message.Receipt, opts?: Messaging.NackOptions) =>
      retryConnection(opts?.requeue === false ? settle.deadLetter(receipt) : settle.nack(receipt, Durations.millis(opts?.delay)))

    const extendVisibility = (receipt: Message.Receipt, duration: Duration.Input) =>
      retryConnection(settle.extend(receipt, Durations.millis(duration)))

    const healthCheck = HealthCheck.probe({
      provider,
      server: "Redis",
      roundTrip: Effect.mapError(redis.send("PING"), fromRedis("health")),
      push: Effect.map(SubscriptionRef.get(health), (state) => state._tag)
    })

    const subscribe = (queues: ReadonlyArray<QueueName.QueueName>, opts: Messaging.SubscribeOptions) =>
      Stream.unwrap(
        Effect.map(
          Effect.forEach(queues, QueueName.make),
          (valid) =>
            Subscription.subscribe({
              redis,
              keys,
              group,
              consumer,
              claims,
              tracker,
              registrar,
              health,
              reconnect,
              retryConnection,
              blockTimeoutMs: Durations.millis(options.blockTimeout ?? defaultBlockTimeout),
              defaultPrefetch: options.prefetch ?? defaultPrefetch
            }, valid, opts)
        )
      )

    return Messaging.Messaging.of(Observability.instrument({
      provider,
      capabilities,
      ...queues,
      send,
      sendBatch,
      receive,
      fetch: (queue, id, opts) => Effect.flatMap(QueueName.make(queue), (valid) => fetch(valid, id, opts)),
      ack: Receipts.checked(ack),
      ackAll: Receipts.checkedAll(settle.ackAll),
      nack: Receipts.checked(nack),
      extendVisibility: Receipts.checked(extendVisibility),
      healthCheck,
      subscribe,
      pushHealth: SubscriptionRef.changes(health)
    }))
  })

const connectionNameOf = (options: RedisOptions) => options.connectionName ?? `conveyor-${process.pid}`

/** Names are checked before connecting, so a bad one is reported even when the server is down. */
const build = (options: RedisOptions) =>
  Effect.gen(function*() {
    const names = namesOf(options)
    yield* Keys.validate(names)
    yield* Keys.validateName("connection name", connectionNameOf(options))
    const redis = yield* Client.make({
      url: options.url,
      name: connectionNameOf(options),
      maxReserved: options.maxSubscriptions ?? defaultMaxSubscriptions,
      reconnect: options.reconnect ?? Reconnect.defaultSchedule
    })
    return yield* Effect.provideService(make({ ...options, ...names }), EffectRedis.Redis, redis)
  })

export const layer = (
  options: RedisOptions
): Layer.Layer<Messaging.Messaging, MessagingError.ConnectionError | MessagingError.ProviderError> =>
  Layer.effect(Messaging.Messaging, build(options))

/** `layer` from configuration, e.g. `Redis.layerConfig({ url: Config.Redacted("REDIS_URL") })`. */
export const layerConfig = (
  config: Config.Wrap<RedisOptions>
): Layer.Layer<Messaging.Messaging, MessagingError.ConnectionError | MessagingError.ProviderError | Config.ConfigError> =>
  Layer.effect(Messaging.Messaging, Effect.flatMap(Config.unwrap(config), build))

/** The provider on a `Redis` service the application already has (e.g. `NodeRedis.layer`). */
export const layerWithRedis = (
  options: ProviderOptions = {}
): Layer.Layer<Messaging.Messaging, MessagingError.ProviderError, EffectRedis.Redis> =>
  Layer.effect(Messaging.Messaging, make(options))
