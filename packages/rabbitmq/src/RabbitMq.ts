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
import * as Channel from "./internal/Channel.ts"
import * as Codec from "./internal/Codec.ts"
import * as Connection from "./internal/Connection.ts"
import * as Deliveries from "./internal/Deliveries.ts"
import { fromAmqp, provider, queueNotFound } from "./internal/errors.ts"
import * as Management from "./internal/Management.ts"
import * as Publisher from "./internal/Publisher.ts"
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
/** A delay queue is redeclared when its last declaration is older than this (see Topology). */
const delayRedeclareMs = 60_000

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
    /** Delay queues in use per queue, with when each was last declared. */
    const delayQueues = new Map<QueueName.QueueName, Map<string, number>>()

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

    /** One basic.get channel per queue: a 404 on one queue leaves the others' claims alone. */
    const pullers = new Map<QueueName.QueueName, ReturnType<typeof Channel.reopening>>()
    const pullerOf = (queue: QueueName.QueueName) => {
      let puller = pullers.get(queue)
      if (puller === undefined) {
        puller = Channel.reopening(connection, (link) => Channel.open(link, Channel.plain, deliveries.forgetChannel))
        pullers.set(queue, puller)
      }
      return puller
    }
    yield* Effect.addFinalizer(() => Effect.forEach(pullers.values(), (puller) => puller.close, { discard: true }))

    /** The routing key for a message due after `delay`: the queue, or its delay queue, declared when needed. */
    const routeFor = (queue: QueueName.QueueName, delay: Duration.Input | undefined): Effect.Effect<string, MessagingError.MessagingError> => {
      const ms = Durations.millis(delay)
      return ms <= 0 ? Effect.succeed(queue) : routeDelayed(queue, ms)
    }

    const routeDelayed = (queue: QueueName.QueueName, ms: number) =>
      Effect.gen(function*() {
        const delayMs = Topology.quantizeDelay(ms)
        const name = Topology.delayQueue(queue, delayMs)
        const known = delayQueues.get(queue) ?? new Map<string, number>()
        const declaredAt = known.get(name)
        if (declaredAt !== undefined && (yield* Clock.currentTimeMillis) - declaredAt < delayRedeclareMs) return name
        // A delay queue for a missing queue would dead-letter into nothing.
        if ((yield* management.check(queue)) === undefined) return yield* Effect.fail(queueNotFound(queue))
        yield* management.run("queue.declare", name, (ch) =>
          ch.assertQueue(name, { durable: true, arguments: Topology.delayQueueArguments(queue, delayMs) }))
        known.set(name, yield* Clock.currentTimeMillis)
        delayQueues.set(queue, known)
        return name
      })

    const knownDelayQueues = (queue: QueueName.QueueName) => [...(delayQueues.get(queue)?.keys() ?? [])]

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

    const ensureQueue = Effect.fnUntraced(function*(name: QueueName.QueueName, opts?: Messaging.QueueOptions) {
      const queue = yield* QueueName.ensurable(yield* QueueName.make(name))
      const kind = opts?.kind ?? defaultKind
      yield* management.run("queue.declare", queue, (ch) => Management.declareQueue(ch, queue, kind))
      ensured.set(queue, kind)
    })

    const deleteQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      const queue = yield* QueueName.make(name)
      const delays = knownDelayQueues(queue)
      yield* management.run("queue.delete", queue, async (ch) => {
        await ch.deleteQueue(queue)
        for (const name of delays) await ch.deleteQueue(name)
        await ch.deleteQueue(Topology.deadLetterQueue(queue))
        await ch.deleteExchange(Topology.deadLetterExchange(queue))
      })
      ensured.delete(queue)
      delayQueues.delete(queue)
      deliveries.forgetQueue(queue)
      const puller = pullers.get(queue)
      pullers.delete(queue)
      if (puller !== undefined) yield* puller.close
    })

    const queueExists = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      const queue = yield* QueueName.make(name)
      return (yield* management.check(queue)) !== undefined
    })

    const listQueues = Effect.gen(function*() {
      const found: Array<QueueName.QueueName> = []
      for (const queue of [...ensured.keys()]) {
        if ((yield* management.check(queue)) === undefined) {
          ensured.delete(queue)
          continue
        }
        found.push(queue)
        const dlq = Topology.deadLetterQueue(queue)
        if ((yield* management.check(dlq)) !== undefined) found.push(dlq)
      }
      return found.sort()
    })

    const purgeQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      const queue = yield* QueueName.make(name)
      const delays = knownDelayQueues(queue)
      let removed = (yield* management.run("queue.purge", queue, (ch) => ch.purgeQueue(queue))).messageCount
      for (const delayQueue of delays) {
        if ((yield* management.check(delayQueue)) === undefined) continue
        removed += (yield* management.run("queue.purge", delayQueue, (ch) => ch.purgeQueue(delayQueue))).messageCount
      }
      return removed
    })

    const send = Effect.fnUntraced(function*(
      name: QueueName.QueueName,
      payload: Message.Json,
      opts?: Messaging.SendOptions
    ) {
      const queue = yield* QueueName.make(name)
      const text = yield* Payload.encode(queue, payload, maxBytes)
      const routingKey = yield* routeFor(queue, opts?.delay)
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
      const routingKey = yield* routeFor(queue, opts?.delay)
      const now = yield* Clock.currentTimeMillis
      const messages = texts.map((text) => outgoing(queue, routingKey, text, opts?.headers ?? {}, now))
      yield* retryConnection(publisher.publish(messages))
      return messages.map((message) => message.options.messageId)
    })

    const receive = Effect.fnUntraced(function*(name: QueueName.QueueName, opts: Messaging.ReceiveOptions) {
      const queue = yield* QueueName.make(name)
      const visibilityMs = Durations.millis(opts.visibilityTimeout)
      const max = Math.max(1, Math.floor(opts.max ?? 1))
      const claimOnce = Effect.suspend(() => {
        const claimed: Array<Message.QueuedMessage> = []
        // One basic.get and its tracking happen together: an interruption never strands an untracked claim.
        const claimOne = (channel: Channel.Channel) =>
          Effect.tryPromise({ try: () => channel.raw.get(queue, { noAck: false }), catch: fromAmqp("basic.get", queue) })
            .pipe(
              Effect.flatMap((got) => {
                if (got === false) return Effect.succeed(false)
                const body = Codec.payload(got)
                if (body === undefined) {
                  channel.raw.nack(got, false, false)
                  return Effect.as(Effect.logWarning(`Dead-lettered a non-JSON message from queue ${queue}`), true)
                }
                const { deadline, receipt, sentAt } = deliveries.track(
                  channel,
                  queue,
                  Codec.messageId(got),
                  got,
                  Codec.receiveCount(got),
                  visibilityMs
                )
                claimed.push(Codec.toQueued(queue, got, body, receipt, deadline, sentAt))
                return Effect.succeed(true)
              }),
              Effect.uninterruptible
            )
        return Effect.gen(function*() {
          const channel = yield* pullerOf(queue).get
          while (claimed.length < max && (yield* claimOne(channel))) {}
          return claimed as ReadonlyArray<Message.QueuedMessage>
        }).pipe(
          // Claims the caller will never see go straight back.
          Effect.onInterrupt(() =>
            Effect.forEach(claimed, (message) => Effect.ignore(deliveries.release(message.receipt)), { discard: true })
          )
        )
      })
      return yield* retryConnection(claimOnce)
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
      const routingKey = yield* routeFor(delivery.queue, opts?.delay).pipe(
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

    const stats = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      const queue = yield* QueueName.make(name)
      const main = yield* management.check(queue)
      if (main === undefined) return yield* Effect.fail(queueNotFound(queue))
      let delayed = 0
      for (const delayQueue of knownDelayQueues(queue)) {
        delayed += (yield* management.check(delayQueue))?.messageCount ?? 0
      }
      const deadLettered = (yield* management.check(Topology.deadLetterQueue(queue)))?.messageCount ?? 0
      const inFlight = deliveries.inFlight(queue)
      return {
        queue,
        depth: main.messageCount + inFlight + delayed,
        visible: main.messageCount,
        inFlight,
        delayed,
        deadLettered
      } satisfies Messaging.QueueStats
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
      ensureQueue,
      deleteQueue,
      queueExists,
      listQueues,
      purgeQueue,
      send,
      sendBatch,
      receive,
      fetch: (queue, id, opts) => Effect.flatMap(QueueName.make(queue), (valid) => fetch(valid, id, opts)),
      ack: Receipts.checked(deliveries.ack),
      // Once a delivery is taken from the table only its settlement can give it back: never cut it short.
      nack: Receipts.checked((receipt, opts?: Messaging.NackOptions) => Effect.uninterruptible(nack(receipt, opts))),
      extendVisibility: Receipts.checked(extendVisibility),
      stats,
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
