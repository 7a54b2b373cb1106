/**
 * The Amazon SQS provider of `Messaging`, on the AWS SDK v3. One client per
 * layer (closed with the layer's scope); standard queues, each with a
 * dead-letter queue `<q>_dlq` bound by a RedrivePolicy. Semantics SQS lacks
 * or bends are handled where they live: stale receipts (internal/Holdings),
 * settling (internal/Claims), push as long polling (internal/Subscription),
 * batched settling and sending (internal/Settlement, internal/Sender), SQS's
 * limits (internal/limits, internal/codec). Not available on SQS: `fetch` by id (`Unsupported`), a
 * message's age in `stats`, ordering on standard queues.
 */
import { ListQueuesCommand } from "@aws-sdk/client-sqs"
import { Durations, HealthCheck, type Message, Messaging, MessagingError, Observability, QueueName, Reconnect } from "@conveyor/core"
import { Config, Duration, Effect, FiberSet, Layer, Schedule, type Scope, Stream } from "effect"
import * as Claims from "./internal/Claims.ts"
import * as Client from "./internal/client.ts"
import * as Codec from "./internal/codec.ts"
import { provider } from "./internal/errors.ts"
import * as Health from "./internal/Health.ts"
import * as Holdings from "./internal/Holdings.ts"
import * as Limits from "./internal/limits.ts"
import * as Queues from "./internal/Queues.ts"
import * as Receiver from "./internal/Receiver.ts"
import * as Sender from "./internal/Sender.ts"
import * as Settlement from "./internal/Settlement.ts"
import * as Subscription from "./internal/Subscription.ts"

export type Credentials = Client.Credentials

export interface SqsOptions {
  /** E.g. `http://127.0.0.1:4566` for an emulator; AWS's own endpoint for the region when absent. */
  readonly endpoint?: string | undefined
  /** Default `us-east-1`. */
  readonly region?: string | undefined
  /** The SDK's default chain (environment, profile, instance role) when absent; the secret never appears in errors or logs. */
  readonly credentials?: Credentials | undefined
  /** Largest message, body and headers together (default 256 KiB, at most 1 MiB); also each queue's MaximumMessageSize. */
  readonly maxPayloadBytes?: number | undefined
  /** RedrivePolicy of the queues `ensureQueue` creates: SQS itself dead-letters a message received this often unsettled (default 10). */
  readonly maxReceiveCount?: number | undefined
  /** How long one long poll of a subscription waits for a message (1 to 20 s, default 20 s). */
  readonly waitTime?: Duration.Input | undefined
  /**
   * Delays between attempts while the endpoint cannot be reached: sends,
   * receives and a subscription's polls ride out an outage on it (default:
   * exponential from 100 ms, jittered, each delay at most 5 s, 10 retries).
   * When it ends the operation fails with `ConnectionError`.
   */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** Deliveries a subscription holds unsettled when its caller states no prefetch (default 10). */
  readonly prefetch?: number | undefined
}

export const capabilities: Messaging.Capabilities = {
  push: "message",
  requiresFallbackPolling: false,
  fallbackPollingInterval: Duration.seconds(30),
  fetchById: false,
  delayedDelivery: true,
  // DelaySeconds: whole seconds, and SQS shows a due message when it does (DESIGN §5).
  delayPrecision: Duration.seconds(1),
  deadLetter: true,
  // ReceiveMessage's WaitTimeSeconds: `receive` long polls when given a `waitTime`.
  maxWaitTime: Duration.seconds(Limits.maxWaitSeconds)
}

const badOption = (message: string) => new MessagingError.ProviderError({ provider, operation: "configure", message })

export const make = (options: SqsOptions): Effect.Effect<Messaging.Messaging["Service"], MessagingError.ProviderError, Scope.Scope> =>
  Effect.gen(function*() {
    const maxBytes = options.maxPayloadBytes ?? Limits.defaultMaxBytes
    if (!Number.isInteger(maxBytes) || maxBytes < 1024 || maxBytes > Limits.largestMaxBytes) {
      return yield* Effect.fail(badOption(`maxPayloadBytes must be a whole number from 1024 to ${Limits.largestMaxBytes}; got ${maxBytes}`))
    }
    const waitSeconds = Duration.toSeconds(Duration.fromInputUnsafe(options.waitTime ?? Duration.seconds(20)))
    if (!Number.isInteger(waitSeconds) || waitSeconds < 1 || waitSeconds > 20) {
      return yield* Effect.fail(badOption(`waitTime must be whole seconds from 1 to 20; got ${waitSeconds} s`))
    }
    const maxReceiveCount = options.maxReceiveCount ?? 10
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      return yield* Effect.fail(badOption(`maxReceiveCount must be a whole number from 1 to 1000; got ${maxReceiveCount}`))
    }

    const client = yield* Client.make({
      endpoint: options.endpoint,
      region: options.region ?? "us-east-1",
      credentials: options.credentials,
      // The longest wait any call may ask for (a receive's `waitTime` too), plus headroom.
      requestTimeoutMs: (Limits.maxWaitSeconds + 10) * 1000,
      maxSockets: 256
    })
    const queues = yield* Queues.make(client, { maxBytes, maxReceiveCount })
    const holdings = Holdings.make()
    const settlement = yield* Settlement.make(client)
    // Any answer from the endpoint ends a push outage (internal/Health): sends and receives report it.
    const health = yield* Health.make
    const sendRaw = yield* Sender.make(client, maxBytes)
    const sendOne = (message: Sender.Outgoing) => health.reaching(sendRaw(message))
    const reconnect = options.reconnect ?? Reconnect.defaultSchedule
    const retryConnection = Reconnect.retrying(reconnect)
    const fibers = yield* FiberSet.make<unknown, unknown>()

    const claims = yield* Claims.make({ client, queues, holdings, settlement, reconnect })
    const receiveRaw = Receiver.make(client, holdings, claims.onUndecodable)
    const receiveOnce = (request: Receiver.Request) => health.reaching(receiveRaw(request))
    const outliving = Receiver.outliving(fibers, claims.release)

    const ensureQueue = Effect.fnUntraced(function*(name: QueueName.QueueName, _opts?: Messaging.QueueOptions) {
      yield* queues.ensure(yield* QueueName.ensurable(yield* QueueName.make(name)))
    })

    const deleteQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      yield* queues.remove(yield* QueueName.make(name))
    })

    const queueExists = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      return yield* queues.exists(yield* QueueName.make(name))
    })

    const purgeQueue = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      return yield* queues.purge(yield* QueueName.make(name))
    })

    /** Everything checked before anything goes out: name, delay, payload, headers, size. */
    const outgoing = Effect.fnUntraced(function*(
      name: QueueName.QueueName,
      payloads: ReadonlyArray<Message.Json>,
      opts: Messaging.SendOptions | undefined
    ) {
      const queue = yield* QueueName.make(name)
      const delaySeconds = yield* Limits.delaySeconds(opts?.delay)
      const encoded = yield* Effect.forEach(payloads, (payload) => Codec.encode(queue, payload, opts?.headers ?? {}, maxBytes))
      return { queue, delaySeconds, encoded }
    })

    const send = Effect.fnUntraced(function*(name: QueueName.QueueName, payload: Message.Json, opts?: Messaging.SendOptions) {
      const { delaySeconds, encoded, queue } = yield* outgoing(name, [payload], opts)
      return yield* retryConnection(queues.withUrl(queue, (url) => sendOne({ queue, url, message: encoded[0]!, delaySeconds })))
    })

    const sendBatch = Effect.fnUntraced(function*(
      name: QueueName.QueueName,
      payloads: ReadonlyArray<Message.Json>,
      opts?: Messaging.SendOptions
    ) {
      const { delaySeconds, encoded, queue } = yield* outgoing(name, payloads, opts)
      if (encoded.length === 0) return []
      // Only the messages an outage stopped are sent again, never one that went out.
      return yield* queues.withUrl(queue, (url) =>
        Effect.forEach(encoded, (message) => Effect.exit(retryConnection(sendOne({ queue, url, message, delaySeconds }))), {
          concurrency: "unbounded"
        }).pipe(Effect.flatMap((results) => Sender.collect(queue, results))))
    })

    const receive = Effect.fnUntraced(function*(name: QueueName.QueueName, opts: Messaging.ReceiveOptions) {
      const queue = yield* QueueName.make(name)
      const max = Math.max(1, Math.floor(opts.max ?? 1))
      const visibilityMs = Durations.millis(opts.visibilityTimeout)
      yield* Limits.visibilitySeconds("receive")(opts.visibilityTimeout)
      const waitSeconds = Limits.waitSeconds(opts.waitTime)
      const claimed: Array<Message.QueuedMessage> = []
      return yield* queues.withUrl(queue, (url) =>
        Effect.gen(function*() {
          // SQS hands out at most 10 per call: ask again while each call comes back full. Only
          // the first call waits; one that waits outlives this receive if it is interrupted.
          while (claimed.length < max) {
            const want = Math.min(Limits.maxBatch, max - claimed.length)
            const wait = claimed.length === 0 ? waitSeconds : 0
            const once = receiveOnce({ queue, url, max: want, visibilityMs, waitSeconds: wait })
            const got = yield* retryConnection(wait > 0 ? outliving(once) : once)
            claimed.push(...got)
            if (got.length < want) break
          }
          return claimed as ReadonlyArray<Message.QueuedMessage>
        })).pipe(
          // Claims the caller will never see go straight back.
          Effect.onInterrupt(() => claims.release(claimed))
        )
    })

    const fetch = Effect.fnUntraced(function*(name: QueueName.QueueName, _id: Message.MessageId, _opts: Messaging.FetchOptions) {
      yield* QueueName.make(name)
      return yield* Effect.fail(
        new MessagingError.Unsupported({
          operation: "fetch",
          provider,
          message: "SQS cannot claim a message by id; use receive or subscribe"
        })
      )
    })

    const stats = Effect.fnUntraced(function*(name: QueueName.QueueName) {
      const queue = yield* QueueName.make(name)
      const counts = yield* queues.counts(queue)
      const dead = yield* queues.counts(QueueName.deadLetter(queue)).pipe(
        Effect.catchTag("QueueNotFound", () => Effect.succeed(undefined))
      )
      return {
        queue,
        depth: counts.visible + counts.inFlight + counts.delayed,
        visible: counts.visible,
        inFlight: counts.inFlight,
        delayed: counts.delayed,
        ...(dead === undefined ? {} : { deadLettered: dead.visible + dead.inFlight + dead.delayed })
      } satisfies Messaging.QueueStats
    })

    const healthCheck = HealthCheck.probe({
      provider,
      server: "SQS",
      roundTrip: Client.call("ListQueues", undefined, (abortSignal) =>
        client.send(new ListQueuesCommand({ MaxResults: 1 }), { abortSignal })),
      push: health.current
    })

    const subscriptionDeps: Subscription.Deps = {
      receive: receiveOnce,
      urlOf: queues.urlOf,
      release: claims.release,
      outliving,
      degraded: health.degraded,
      recovered: health.recovered,
      waitSeconds,
      reconnect,
      defaultPrefetch: options.prefetch ?? Limits.maxBatch
    }

    const subscribe = (names: ReadonlyArray<QueueName.QueueName>, opts: Messaging.SubscribeOptions) =>
      Stream.unwrap(
        Effect.map(
          Effect.forEach(names, (name) => QueueName.make(name)),
          (valid) => Subscription.subscribe(subscriptionDeps, valid, opts)
        )
      )

    // Spans (OpenTelemetry messaging attributes) and metrics, the same for every provider.
    return Messaging.Messaging.of(Observability.instrument({
      provider,
      capabilities,
      ensureQueue,
      deleteQueue,
      queueExists,
      listQueues: queues.list,
      purgeQueue,
      send,
      sendBatch,
      receive,
      fetch,
      ack: claims.ack,
      // Each receipt on its own (its hold, its queue's URL, its retry while held), all at once:
      // they gather into DeleteMessageBatch calls of 10 as concurrent acks do.
      ackAll: (receipts) => Effect.forEach(receipts, (receipt) => Effect.exit(claims.ack(receipt)), { concurrency: "unbounded" }),
      // A settlement taken from the holdings can only be given back by finishing: never cut it short.
      nack: (receipt, opts) => Effect.uninterruptible(claims.nack(receipt, opts)),
      extendVisibility: claims.extendVisibility,
      stats,
      healthCheck,
      subscribe,
      pushHealth: health.changes
    }))
  })

export const layer = (options: SqsOptions = {}): Layer.Layer<Messaging.Messaging, MessagingError.ProviderError> =>
  Layer.effect(Messaging.Messaging, make(options))

export const layerConfig = (
  config: Config.Wrap<SqsOptions>
): Layer.Layer<Messaging.Messaging, MessagingError.ProviderError | Config.ConfigError> =>
  Layer.effect(Messaging.Messaging, Effect.flatMap(Config.unwrap(config), make))
