/**
 * The PGMQ provider: the `Messaging` service on PostgreSQL, over the real
 * `pgmq` extension (1.5+) or Conveyor's own PGMQ-compatible schema. This
 * module holds the options, the start-up (install or detect, the listener)
 * and the layers; each concern lives in its own internal module:
 *
 * - `internal/queues.ts`: queue DDL (a queue and its dead-letter queue, both or neither);
 * - `internal/claims.ts`: claims as PGMQ's `read` makes them, by id in batches;
 * - `internal/settlement.ts`: ack, nack and extend, guarded by the receipt's `read_ct` and `vt`;
 * - `internal/sends.ts`: sends, concurrent ones coalesced into one `INSERT`;
 * - `internal/stats.ts`, `internal/subscriptions.ts` (push from the notify triggers).
 *
 * Every statement runs on the layer's `PgClient`, so `send`, `ack` and `nack`
 * inside that client's `sql.withTransaction` commit or roll back with the
 * caller's own writes (the layer provides `SqlClient` for that); such calls
 * are never batched with work outside the transaction.
 */
import { Durations, Messaging, MessagingError, Observability, Payload, QueueName, Receipts } from "@conveyor/core"
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Duration, Effect, Layer, type Redacted, Schedule, Scope, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { SqlClient } from "effect/sql"
import { connectionError, fromSql, isConnectionFailure, provider } from "./internal/errors.ts"
import * as Claims from "./internal/claims.ts"
import * as Queues from "./internal/queues.ts"
import * as Sends from "./internal/sends.ts"
import * as Settlement from "./internal/settlement.ts"
import * as Stats from "./internal/stats.ts"
import * as Subscriptions from "./internal/subscriptions.ts"
import * as Tables from "./internal/tables.ts"
import * as Installer from "./PgmqInstaller.ts"
import { PgmqListener } from "./PgmqListener.ts"
import * as PgmqListenerModule from "./PgmqListener.ts"
import * as NotifyConfig from "./PgmqNotifyConfig.ts"

export { provider }

export interface ProviderOptions {
  /** Prefix of every notification channel: `<prefix>.pgmq_message_ready...`. */
  readonly channelPrefix?: string
  /** Queue-name pattern with a `namespace` group; default: the tasker-pgmq rules. */
  readonly queuePattern?: string
  /** Largest notification in bytes (default 7800); bigger messages are announced without payload. */
  readonly notifyMaxBytes?: number
  /** Largest encoded message payload accepted by `send` (default `Payload.defaultMaxBytes`, 1 MiB). */
  readonly maxPayloadBytes?: number
  /** What `ack` does with the message (default `archive`: moved to `pgmq.a_<name>`). */
  readonly ackMode?: "archive" | "delete"
  /** Advertised to Hybrid consumers as their fallback poll period (default 5 seconds). */
  readonly fallbackPollingInterval?: Duration.Input
  /** Paces connection attempts at start (the layer fails when it ends) and listener reconnects. */
  readonly reconnect?: Schedule.Schedule<unknown, unknown>
  /** Install the schema (when there is no PGMQ) and the notify triggers at start (default true). */
  readonly install?: boolean
  /**
   * Where the listener connects, when not where the pool does: LISTEN needs a
   * session of its own, which a transaction-mode pooler (PgBouncer) does not give.
   */
  readonly listenUrl?: Redacted.Redacted
}

export interface Options extends ProviderOptions {
  readonly url: Redacted.Redacted
  /** Pool size for statements (default 10); the listener has its own connection. */
  readonly maxConnections?: number
  /** `application_name` of the pool's connections; the listener's gets `:listener` appended. */
  readonly applicationName?: string
}

/** Exponential from 100 ms, capped at 5 s, jittered, 8 attempts (~16 s). */
export const defaultReconnect: Schedule.Schedule<unknown, unknown> = Schedule.min([
  Schedule.exponential("100 millis", 2),
  Schedule.spaced("5 seconds")
]).pipe(Schedule.jittered, Schedule.upTo({ times: 8 }))

export const defaultFallbackPollingInterval = Duration.seconds(5)

export type StartError =
  | MessagingError.ConnectionError
  | MessagingError.ProviderError
  | NotifyConfig.InvalidNotifyConfig

/**
 * Builds the service on the `PgClient` in context: installs or detects the
 * schema (retrying on `reconnect` while PostgreSQL is unreachable) and opens
 * the listener.
 */
export const make = (
  options: ProviderOptions = {}
): Effect.Effect<
  { readonly messaging: Messaging.Messaging["Service"]; readonly listener: PgmqListener["Service"] },
  StartError,
  PgClient.PgClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const notify = yield* NotifyConfig.make(options)
    const reconnect = options.reconnect ?? defaultReconnect
    const maxBytes = options.maxPayloadBytes ?? Payload.defaultMaxBytes
    const ackMode = options.ackMode ?? "archive"

    const installation = yield* (options.install === false ? Installer.detect : Installer.install(notify)).pipe(
      Effect.retry({
        schedule: reconnect,
        while: (error) => error._tag === "SqlError" && isConnectionFailure(error)
      }),
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError((error) =>
        error._tag === "InstallConflict"
          ? new MessagingError.ProviderError({ provider, operation: "install", message: error.message })
          : fromSql("install")(error)
      )
    )
    if (installation.flavor._tag === "Absent") {
      return yield* new MessagingError.ProviderError({
        provider,
        operation: "install",
        message: "The database has no pgmq schema: install it with `conveyor-pgmq install` or let the layer install it"
      })
    }

    const listener = yield* PgmqListenerModule.make({
      connection: {
        ...sql.config,
        ...(options.listenUrl === undefined ? {} : { url: options.listenUrl }),
        applicationName: `${sql.config.applicationName ?? "conveyor-pgmq"}:listener`
      },
      notify,
      source: installation.notify === undefined ? "extension" : "conveyor",
      reconnect
    }).pipe(Effect.mapError((error) => connectionError("listen", error)))

    const tables = Tables.make(sql)
    const queues = Queues.make(tables)
    const claims = yield* Claims.make(tables)
    const sends = yield* Sends.make(tables, maxBytes)
    const settlement = yield* Settlement.make(tables, queues, { ackMode })
    const { healthCheck, stats } = Stats.make(tables, queues, listener.currentHealth)

    // Names are branded, but a cast forges one: every name is checked again before it nears SQL.
    const valid = <A, E>(name: string, use: (queue: QueueName.QueueName) => Effect.Effect<A, E>) =>
      Effect.flatMap(QueueName.make(name), use)

    const fallbackPollingInterval = options.fallbackPollingInterval === undefined
      ? defaultFallbackPollingInterval
      : Duration.fromInputUnsafe(options.fallbackPollingInterval)
    const subscriptions = Subscriptions.make({
      events: listener.queueEvents,
      claimMany: claims.claimMany,
      release: (receipt) => settlement.nack(receipt),
      existing: queues.existing,
      checkEvery: fallbackPollingInterval
    })

    const messaging = Observability.instrument({
      provider,
      capabilities: {
        push: "message",
        requiresFallbackPolling: true,
        fallbackPollingInterval,
        fetchById: true,
        delayedDelivery: true,
        deadLetter: true
      },
      ensureQueue: (queue) => valid(queue, (q) => Effect.flatMap(QueueName.ensurable(q), queues.ensureQueue)),
      deleteQueue: (queue) =>
        valid(queue, (q) =>
          Effect.andThen(queues.deleteQueue(q), Effect.forEach([q, QueueName.deadLetter(q)], subscriptions.deleted))),
      queueExists: (queue) => valid(queue, queues.queueExists),
      listQueues: queues.listQueues,
      purgeQueue: (queue) => valid(queue, queues.purgeQueue),
      send: (queue, payload, options) => valid(queue, (q) => sends.send(q, payload, options)),
      sendBatch: (queue, payloads, options) => valid(queue, (q) => sends.sendBatch(q, payloads, options)),
      receive: (queue, options) => valid(queue, (q) => claims.receive(q, options)),
      fetch: (queue, id, options) => valid(queue, (q) => claims.fetch(q, id, options)),
      ack: Receipts.checked((receipt) => Effect.ensuring(settlement.ack(receipt), subscriptions.forget(receipt))),
      ackAll: Receipts.checkedAll((receipts) =>
        Effect.ensuring(settlement.ackAll(receipts), Effect.forEach(receipts, subscriptions.forget, { discard: true }))),
      nack: Receipts.checked((receipt, options?: Messaging.NackOptions) =>
        Effect.ensuring(settlement.nack(receipt, options), subscriptions.forget(receipt))),
      extendVisibility: Receipts.checked(settlement.extendVisibility),
      stats: (queue) => valid(queue, stats),
      healthCheck,
      subscribe: (names, options) =>
        Stream.unwrap(Effect.map(
          Effect.forEach(names, QueueName.make),
          (checked) => subscriptions.subscribe(checked, Durations.millis(options.visibilityTimeout), options.prefetch)
        )),
      pushHealth: listener.health
    })
    return { messaging, listener }
  })

const build = (options: Options) =>
  Effect.gen(function*() {
    const client = yield* PgClient.make({
      url: options.url,
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "conveyor-pgmq"
    }).pipe(Effect.mapError((error) => connectionError("connect", error)))
    const { listener, messaging } = yield* make(options).pipe(Effect.provideService(PgClient.PgClient, client))
    return Context.make(Messaging.Messaging, messaging).pipe(
      Context.add(PgmqListener, listener),
      Context.add(PgClient.PgClient, client),
      Context.add(SqlClient.SqlClient, client)
    )
  })

export type Services = Messaging.Messaging | PgmqListener | PgClient.PgClient | SqlClient.SqlClient

/**
 * The provider with its own connection pool. Also provides the pool as
 * `SqlClient`/`PgClient`: use it for business writes that must commit or
 * roll back together with `send`, `ack` and `nack`.
 */
export const layer = (options: Options): Layer.Layer<Services, StartError> =>
  Layer.effectContext(build(options)).pipe(Layer.provide(Reactivity.layer))

/** `layer` from configuration, e.g. `Pgmq.layerConfig({ url: Config.Redacted("DATABASE_URL") })`. */
export const layerConfig = (config: Config.Wrap<Options>): Layer.Layer<Services, StartError | Config.ConfigError> =>
  Layer.effectContext(Effect.flatMap(Config.unwrap(config), build)).pipe(Layer.provide(Reactivity.layer))

/** The provider on a `PgClient` the application already has (transactions join that client). */
export const layerWithClient = (
  options: ProviderOptions = {}
): Layer.Layer<Messaging.Messaging | PgmqListener, StartError, PgClient.PgClient> =>
  Layer.effectContext(Effect.map(make(options), ({ listener, messaging }) =>
    Context.make(Messaging.Messaging, messaging).pipe(Context.add(PgmqListener, listener))))
