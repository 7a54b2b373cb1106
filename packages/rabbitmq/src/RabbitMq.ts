/**
 * The RabbitMQ provider of `Messaging`, on amqplib. One connection per layer
 * (acquired in the layer's scope, closed with it) carrying a confirm channel
 * for publishing, one channel per subscription, one per queue for basic.get,
 * and one for management. Semantics that AMQP lacks are built here and
 * documented where they live: the visibility timeout (internal/Deliveries),
 * receiveCount (internal/Codec), delays and dead-lettering (Topology),
 * recovery (internal/Connection, internal/Subscription).
 *
 * Not available over AMQP 0-9-1, and therefore approximated:
 * - `fetch` by id: `Unsupported` (capabilities.fetchById is false);
 * - `listQueues`: the queues this layer ensured that still exist, with their
 *   dead-letter queues (AMQP has no
 *   listing; the management plugin's HTTP API would be another dependency);
 * - `stats.inFlight`: the deliveries this layer holds unacked; `delayed`: the
 *   messages in the delay queues this layer declared.
 */
import { Clock, Config, Duration, Effect, Layer, Redacted, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import {
  Durations,
  HealthCheck,
  Message,
  Messaging,
  MessagingError,
  Observability,
  Payload,
  QueueName,
  Receipts,
  Reconnect
} from "@conveyor/core"
import * as Codec from "./internal/Codec.ts"
import * as Connection from "./internal/Connection.ts"
import * as DelayRoutes from "./internal/DelayRoutes.ts"
import * as Deliveries from "./internal/Deliveries.ts"
import { provider } from "./internal/errors.ts"
import * as Management from "./internal/Management.ts"
import * as Publisher from "./internal/Publisher.ts"
import * as Pull from "./internal/Pull.ts"
import * as Queues from "./internal/Queues.ts"
import * as Subscription from "./internal/Subscription.ts"
import * as Topology from "./Topology.ts"

export interface RabbitMqOptions {
  /** `amqp://user:password@host:port/vhost`; the password never appears in errors or logs. */
  readonly url: Redacted.Redacted<string>
  /** Kind of the queues `ensureQueue` declares unless it is told otherwise (default `classic`). */
  readonly queueKind?: Topology.QueueKind | undefined
  /** Largest encoded payload accepted by `send` (default `Payload.defaultMaxBytes`, 1 MiB). */
  readonly maxPayloadBytes?: number | undefined
  /** AMQP heartbeat interval (default 10 seconds): a silent broker is detected within about twice this. */
  readonly heartbeat?: Duration.Input | undefined
  /**
   * Delays between connection attempts, at start and after a loss (default:
   * exponential from 100 ms, jittered, each delay at most 5 s, 10 retries).
   * When it ends the attempt fails with `ConnectionError`.
   */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** Prefetch of a subscription that does not state its own (default 32, per queue). */
  readonly prefetch?: number | undefined
  /** Shown by the broker (`connection_name`), e.g. in `rabbitmqctl list_connections`. */
  readonly connectionName?: string | undefined
}

const defaultHeartbeat = Duration.seconds(10)
const defaultPrefetch = 32

export const capabilities: Messaging.Capabilities = {
  push: "message",
  requiresFallbackPolling: false,
  fallbackPollingInterval: Duration.seconds(30),
  fetchById: false,
  delayedDelivery: true,
  deadLetter: true
}

export const make = (
  options: RabbitMqOptions
): Effect.Effect<Messaging.Messaging["Service"], MessagingError.ConnectionError, Scope.Scope> =>
  Effect.gen(function*() {
    const defaultKind = options.queueKind ?? "classic"
    const maxBytes = options.maxPayloadBytes ?? Payload.defaultMaxBytes
    const reconnect = options.reconnect ?? Reconnect.defaultSchedule

    const retryConnection = Reconnect.retrying(reconnect)

    /** Queues ensured through this layer, redeclared after every reconnect. */
    const ensured = new Map<QueueName.QueueName, Topology.QueueKind>()

    const connection = yield* Connection.make(
      {
        url: options.url,
        heartbeat: Duration.fromInputUnsafe(options.heartbeat ?? defaultHeartbeat),
        connectionName: options.connectionName ?? `conveyor-${process.pid}`,
        reconnect
      },
      (link) =>
        Management.onLink(link, async (ch) => {
          for (const [queue, kind] of ensured) await Management.declareQueue(ch, queue, kind)
        }).pipe(
          Effect.catch((error) => Effect.logWarning(`Redeclaring topology after a reconnect failed: ${error.message}`))
        )
    )
    const publisher = Publisher.make(connection)
    const management = Management.make(connection)
    const routes = DelayRoutes.make(management)

    const copyOf = (delivery: Deliveries.Delivery, routingKey: string): Publisher.Outgoing => ({
      queue: delivery.queue,
      routingKey,
      body: delivery.message.content,
      options: Codec.publishOptions(
        delivery.messageId,
        Codec.userHeaders(delivery.message),
        delivery.sentAt,
        delivery.receiveCount
      )
    })

    const deliveries = yield* Deliveries.make((delivery) => publisher.publish([copyOf(delivery, delivery.queue)]))
    const pull = yield* Pull.make(connection, deliveries)
    const queues = Queues.make({ management, routes, deliveries, pull, ensured, defaultKind })

    const outgoing = (
      queue: QueueName.QueueName,
      routingKey: string,
      text: string,
      headers: Message.Headers,
      sentAt: number
    ): Publisher.Outgoing => ({
      queue,
      routingKey,
      body: Buffer.from(text, "utf8"),
      options: Codec.publishOptions(Codec.newMessageId(sentAt), headers, sentAt, 0)
    })

    const send = Effect.fnUntraced(function*(
      name: QueueName.QueueName,
      payload: Message.Json,
      opts?: Messaging.SendOptions
    ) {
      const queue = yield* QueueName.make(name)
      const text = yield* Payload.encode(queue, payload, maxBytes)
      const routingKey = yield* routes.routeFor(queue, opts?.delay)
      const message = outgoing(queue, routingKey, text, opts?.headers ?? {}, yield* Clock.currentTimeMillis)
      yield* retryConnection(publisher.publish([message]))
      return message.options.messageId
    })

    const sendBatch = Effect.fnUntraced(function*(
      name: QueueName.QueueName,
      payloads: ReadonlyArray<Message.Json>,
      opts?: Messaging.SendOptions
    ) {
      const queue = yield* QueueName.make(name)
      const texts = yield* Effect.forEach(payloads, (payload) => Payload.encode(queue, payload, maxBytes))
      if (texts.length === 0) return []
      const routingKey = yield* routes.routeFor(queue, opts?.delay)
      const now = yield* Clock.currentTimeMillis
      const messages = texts.map((text) => outgoing(queue, routingKey, text, opts?.headers ?? {}, now))
      yield* retryConnection(publisher.publish(messages))
      return messages.map((message) => message.options.messageId)
    })

    const receive = Effect.fnUntraced(function*(name: QueueName.QueueName, opts: Messaging.ReceiveOptions) {
      const queue = yield* QueueName.make(name)
      const max = Math.max(1, Math.floor(opts.max ?? 1))
      return yield* retryConnection(pull.claim(queue, Durations.millis(opts.visibilityTimeout), max))
    })

    const fetch = (_queue: QueueName.QueueName, _id: Message.MessageId, _opts: Messaging.FetchOptions) =>
      Effect.fail(
        new MessagingError.Unsupported({
          operation: "fetch",
          provider,
          message: "RabbitMQ cannot claim a message by id; use receive or subscribe"
        })
      )

    const nack = Effect.fnUntraced(function*(receipt: Message.Receipt, opts?: Messaging.NackOptions) {
      if (opts?.requeue === false) return yield* deliveries.deadLetter(receipt)
      const delivery = yield* deliveries.take(receipt)
      // Could not route the copy: give the original back to the broker as it is.
      const routingKey = yield* routes.routeFor(delivery.queue, opts?.delay).pipe(
        Effect.tapError(() => Effect.ignore(deliveries.giveBack(delivery)))
      )
      yield* deliveries.replace(delivery, publisher.publish([copyOf(delivery, routingKey)]))
    })

    const extendVisibility = Effect.fnUntraced(function*(
      receipt: Message.Receipt,
      duration: Duration.Input
    ) {
      yield* deliveries.extend(receipt, Durations.millis(duration))
    })

    const healthCheck = HealthCheck.probe({
      provider,
      server: "RabbitMQ",
      roundTrip: management.run("health", undefined, (ch) => ch.checkExchange("amq.direct")),
      push: Effect.map(SubscriptionRef.get(connection.health), (state) => state._tag)
    })

    // Channels of ended subscriptions stay open here until the deliveries they emitted are settled.
    const retiring = yield* Effect.scope
    const subscribe = (queues: ReadonlyArray<QueueName.QueueName>, opts: Messaging.SubscribeOptions) =>
      Stream.unwrap(
        Effect.map(
          Effect.forEach(queues, (queue) => QueueName.make(queue)),
          (valid) =>
            Subscription.subscribe(
              { connection, deliveries, reconnect, retiring, defaultPrefetch: options.prefetch ?? defaultPrefetch },
              valid,
              opts
            )
        )
      )

    // Spans (OpenTelemetry messaging attributes) and metrics, the same for every provider.
    return Messaging.Messaging.of(Observability.instrument({
      provider,
      capabilities,
      ...queues,
      send,
      sendBatch,
      receive,
      fetch: (queue, id, opts) => Effect.flatMap(QueueName.make(queue), (valid) => fetch(valid, id, opts)),
      ack: Receipts.checked(deliveries.ack),
      ackAll: Receipts.checkedAll(deliveries.ackAll),
      // Once a delivery is taken from the table only its settlement can give it back: never cut it short.
      nack: Receipts.checked((receipt, opts?: Messaging.NackOptions) => Effect.uninterruptible(nack(receipt, opts))),
      extendVisibility: Receipts.checked(extendVisibility),
      healthCheck,
      subscribe,
      pushHealth: SubscriptionRef.changes(connection.health)
    }))
  })

export const layer = (options: RabbitMqOptions): Layer.Layer<Messaging.Messaging, MessagingError.ConnectionError> =>
  Layer.effect(Messaging.Messaging, make(options))

export const layerConfig = (
  config: Config.Wrap<RabbitMqOptions>
): Layer.Layer<Messaging.Messaging, MessagingError.ConnectionError | Config.ConfigError> =>
  Layer.effect(Messaging.Messaging, Effect.flatMap(Config.unwrap(config), make))
