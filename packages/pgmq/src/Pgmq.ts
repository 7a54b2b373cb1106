/**
 * The PGMQ provider: the `Messaging` service on PostgreSQL, over the real
 * `pgmq` extension (1.5+) or Conveyor's own PGMQ-compatible schema.
 *
 * - Claims (receive, fetch by id) follow PGMQ's `read`: visible rows,
 *   `FOR UPDATE SKIP LOCKED`, `read_ct + 1`, new `vt` — with millisecond
 *   visibility timeouts. Receipts carry the claim's `read_ct`; ack, nack and
 *   extend only touch the row while `read_ct` is unchanged and the claim's
 *   `vt` has not passed, else `StaleReceipt`: a stale receipt never settles
 *   another consumer's claim.
 * - Every statement runs on the layer's `PgClient`, so `send`, `ack` and
 *   `nack` inside that client's `sql.withTransaction` commit or roll back
 *   with the caller's own writes (the layer provides `SqlClient` for that).
 * - Push comes from the notify triggers through one `PgmqListener`.
 */
import {
  type Message,
  Messaging,
  MessagingError,
  Observability,
  Payload,
  QueueName
} from "@conveyor/core"
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Duration, Effect, Layer, Option, type Redacted, Schedule, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { connectionError, fromSql, fromSqlOn, isConnectionFailure, provider } from "./internal/errors.ts"
import * as Subscriptions from "./internal/subscriptions.ts"
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

interface Row {
  readonly msg_id: bigint
  readonly read_ct: number
  readonly enqueued_at: Date
  readonly vt: Date
  readonly message: unknown
  readonly headers: unknown
}

const millis = (input: Duration.Input | undefined): number =>
  input === undefined ? 0 : Math.max(0, Duration.toMillis(Duration.fromInputUnsafe(input)))

const toHeaders = (value: unknown): Message.Headers => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return {}
  const headers: Record<string, string> = {}
  for (const [key, v] of Object.entries(value)) if (typeof v === "string") headers[key] = v
  return headers
}

const isMessageId = (id: string) => /^[0-9]{1,19}$/.test(id)

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

    const table = (queue: QueueName.QueueName) => sql(`q_${queue}`)
    const archive = (queue: QueueName.QueueName) => sql(`a_${queue}`)

    const toQueued = (queue: QueueName.QueueName, row: Row, payload: unknown): Message.QueuedMessage => {
      const id = String(row.msg_id)
      return {
        queue,
        id,
        receipt: { provider, queue, messageId: id, token: row.read_ct },
        payload: payload as Message.Json,
        headers: toHeaders(row.headers),
        receiveCount: row.read_ct,
        enqueuedAt: row.enqueued_at,
        visibleUntil: row.vt
      }
    }

    const vtFrom = (ms: number) => sql`clock_timestamp() + ${ms}::float8 * interval '1 millisecond'`

    // Creating and dropping queues in several sessions at once, or while another instance
    // (re)installs the notify function, deadlocks in PostgreSQL (tables, pgmq.meta, the
    // function and the triggers attached on creation lock in different orders), so queue DDL
    // takes the installer's transaction-level advisory lock: it is rare, never hot.
    const ddl = <A>(statement: Effect.Effect<A, SqlError>) =>
      sql.withTransaction(
        Effect.andThen(sql`SELECT pg_advisory_xact_lock(${Installer.lockKey}::integer)`, statement)
      )

    const ensureQueue = (queue: QueueName.QueueName) =>
      Effect.forEach(
        [queue, QueueName.deadLetter(queue)],
        (name) =>
          ddl(sql`SELECT pgmq."create"(${name}::text)`).pipe(
            // The extension's create is not guarded against a concurrent create of the same queue.
            Effect.retry({ times: 1, while: (error: SqlError) => error.reason._tag === "UniqueViolation" })
          ),
        { discard: true }
      ).pipe(Effect.mapError(fromSqlOn("create", queue)))

    const deleteQueue = (queue: QueueName.QueueName) =>
      Effect.forEach(
        [queue, QueueName.deadLetter(queue)],
        (name) => ddl(sql`SELECT pgmq.drop_queue(${name}::text)`),
        { discard: true }
      ).pipe(Effect.mapError(fromSqlOn("delete_queue", queue)))

    const queueExists = (queue: QueueName.QueueName) =>
      sql<{ readonly found: boolean }>`
        SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = ${queue}::text) AS found`.pipe(
        Effect.map((rows) => rows[0]?.found === true),
        Effect.mapError(fromSqlOn("queue_exists", queue))
      )

    const listQueues = sql<{ readonly queue_name: string }>`
      SELECT queue_name FROM pgmq.meta ORDER BY queue_name`.pipe(
      // Queues other clients created under names we refuse are not ours to touch.
      Effect.map((rows) => rows.map((row) => row.queue_name).filter(QueueName.is)),
      Effect.mapError(fromSql("list_queues"))
    )

    const purgeQueue = (queue: QueueName.QueueName) =>
      sql<{ readonly purged: bigint }>`SELECT pgmq.purge_queue(${queue}::text) AS purged`.pipe(
        Effect.map((rows) => Number(rows[0]?.purged ?? 0)),
        Effect.mapError(fromSqlOn("purge", queue))
      )

    const headersJson = (options?: Messaging.SendOptions) =>
      options?.headers === undefined ? null : JSON.stringify(options.headers)

    const send = (queue: QueueName.QueueName, payload: Message.Json, options?: Messaging.SendOptions) =>
      Effect.gen(function*() {
        const body = yield* Payload.encode(queue, payload, maxBytes)
        const rows = yield* sql<{ readonly msg_id: bigint }>`
          INSERT INTO pgmq.${table(queue)} (vt, message, headers)
          VALUES (${vtFrom(millis(options?.delay))}, ${body}::jsonb, ${headersJson(options)}::jsonb)
          RETURNING msg_id`.pipe(Effect.mapError(fromSqlOn("send", queue)))
        return String(rows[0]!.msg_id)
      })

    const sendBatch = (
      queue: QueueName.QueueName,
      payloads: ReadonlyArray<Message.Json>,
      options?: Messaging.SendOptions
    ) =>
      Effect.gen(function*() {
        if (payloads.length === 0) return []
        const bodies = yield* Effect.forEach(payloads, (payload) => Payload.encode(queue, payload, maxBytes))
        // One statement: one round trip, and one batch_ready notification.
        const rows = yield* sql<{ readonly msg_id: bigint }>`
          INSERT INTO pgmq.${table(queue)} (vt, message, headers)
          SELECT ${vtFrom(millis(options?.delay))}, m.value, ${headersJson(options)}::jsonb
          FROM jsonb_array_elements(${`[${bodies.join(",")}]`}::jsonb) WITH ORDINALITY AS m(value, ord)
          ORDER BY m.ord
          RETURNING msg_id`.pipe(Effect.mapError(fromSqlOn("send", queue)))
        // Identity values follow insertion order, which follows the input.
        return rows.map((row) => row.msg_id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String)
      })

    const claimed = (queue: QueueName.QueueName, rows: ReadonlyArray<Row>) =>
      [...rows].sort((a, b) => (a.msg_id < b.msg_id ? -1 : 1)).map((row) => toQueued(queue, row, row.message))

    // Claims are uninterruptible: one interrupted after the UPDATE reached the server would
    // hold its messages, unrecorded, for a whole visibility timeout.
    const receive = (queue: QueueName.QueueName, options: Messaging.ReceiveOptions) =>
      sql<Row>`
        WITH cte AS (
          SELECT msg_id FROM pgmq.${table(queue)}
          WHERE vt <= clock_timestamp()
          ORDER BY msg_id LIMIT ${Math.max(1, Math.floor(options.max ?? 1))}::integer
          FOR UPDATE SKIP LOCKED)
        UPDATE pgmq.${table(queue)} m
        SET vt = ${vtFrom(millis(options.visibilityTimeout))}, read_ct = m.read_ct + 1
        FROM cte WHERE m.msg_id = cte.msg_id
        RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers`.pipe(
        Effect.map((rows) => claimed(queue, rows)),
        Effect.mapError(fromSqlOn("receive", queue)),
        Effect.uninterruptible
      )

    /** Claims one message by id if it is visible now; `withMessage: false` leaves the payload on the server. */
    const claimById = (queue: QueueName.QueueName, id: string, visibilityMs: number) =>
      sql<Row>`
        WITH cte AS (
          SELECT msg_id FROM pgmq.${table(queue)}
          WHERE msg_id = ${id}::bigint AND vt <= clock_timestamp()
          FOR UPDATE SKIP LOCKED)
        UPDATE pgmq.${table(queue)} m
        SET vt = ${vtFrom(visibilityMs)}, read_ct = m.read_ct + 1
        FROM cte WHERE m.msg_id = cte.msg_id
        RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers`.pipe(
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        Effect.mapError(fromSqlOn("receive", queue)),
        Effect.uninterruptible
      )

    const fetch = (queue: QueueName.QueueName, id: Message.MessageId, options: Messaging.FetchOptions) =>
      isMessageId(id)
        ? Effect.map(
          claimById(queue, id, millis(options.visibilityTimeout)),
          Option.map((row) => toQueued(queue, row, row.message))
        )
        : Effect.succeed(Option.none())

    /** The claim a receipt proves, or a ProviderError for a receipt that is not ours. */
    const claimOf = (receipt: Message.Receipt, operation: string) =>
      receipt.provider === provider && typeof receipt.token === "number" && isMessageId(receipt.messageId)
        ? Effect.succeed({ queue: receipt.queue, id: receipt.messageId, readCt: receipt.token })
        : Effect.fail(
          new MessagingError.ProviderError({
            provider,
            operation,
            message: `Receipt from provider ${receipt.provider} cannot be settled by ${provider}`
          })
        )

    const stale = (receipt: Message.Receipt) =>
      new MessagingError.StaleReceipt({
        queue: receipt.queue,
        messageId: receipt.messageId,
        message:
          `Delivery of message ${receipt.messageId} on ${receipt.queue} is no longer held: it was settled, or its visibility timeout passed and it was claimed again`
      })

    const settled = (receipt: Message.Receipt) => (rows: ReadonlyArray<unknown>) =>
      rows.length === 1 ? Effect.void : Effect.fail(stale(receipt))

    const ack = (receipt: Message.Receipt) =>
      Effect.gen(function*() {
        const { id, queue, readCt } = yield* claimOf(receipt, "ack")
        const rows = yield* (ackMode === "delete"
          ? sql`DELETE FROM pgmq.${table(queue)} WHERE msg_id = ${id}::bigint AND read_ct = ${readCt}::integer AND vt > clock_timestamp()
                RETURNING msg_id`
          : sql`
              WITH done AS (
                DELETE FROM pgmq.${table(queue)} WHERE msg_id = ${id}::bigint AND read_ct = ${readCt}::integer AND vt > clock_timestamp()
                RETURNING msg_id, read_ct, enqueued_at, vt, message, headers)
              INSERT INTO pgmq.${archive(queue)} (msg_id, read_ct, enqueued_at, vt, message, headers)
              SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM done
              RETURNING msg_id`).pipe(Effect.mapError(fromSqlOn("ack", queue)))
        yield* settled(receipt)(rows)
      })

    /** Dead-letter queues of queues other clients created may be missing: create on first use. */
    const knownDeadLetterQueues = new Set<string>()
    const ensureDeadLetterQueue = (queue: QueueName.QueueName) =>
      Effect.gen(function*() {
        const dlq = QueueName.deadLetter(queue)
        if (knownDeadLetterQueues.has(dlq)) return dlq
        const [row] = yield* sql<{ readonly found: boolean }>`
          SELECT to_regclass(${`pgmq.q_${dlq}`}::text) IS NOT NULL AS found`
        if (row?.found !== true) yield* ddl(sql`SELECT pgmq."create"(${dlq}::text)`)
        knownDeadLetterQueues.add(dlq)
        return dlq
      }).pipe(Effect.mapError(fromSqlOn("nack", queue)))

    const nack = (receipt: Message.Receipt, options: Messaging.NackOptions = {}) =>
      Effect.gen(function*() {
        const { id, queue, readCt } = yield* claimOf(receipt, "nack")
        if (options.requeue === false) {
          const dlq = yield* ensureDeadLetterQueue(queue)
          // One statement: the message is in exactly one of the two queues, whatever happens.
          const rows = yield* sql`
            WITH moved AS (
              DELETE FROM pgmq.${table(queue)} WHERE msg_id = ${id}::bigint AND read_ct = ${readCt}::integer AND vt > clock_timestamp()
              RETURNING message, headers)
            INSERT INTO pgmq.${table(dlq)} (vt, message, headers)
            SELECT clock_timestamp(), message, headers FROM moved
            RETURNING msg_id`.pipe(Effect.mapError(fromSqlOn("nack", queue)))
          return yield* settled(receipt)(rows)
        }
        const rows = yield* sql`
          UPDATE pgmq.${table(queue)} SET vt = ${vtFrom(millis(options.delay))}
          WHERE msg_id = ${id}::bigint AND read_ct = ${readCt}::integer AND vt > clock_timestamp()
          RETURNING msg_id`.pipe(Effect.mapError(fromSqlOn("nack", queue)))
        yield* settled(receipt)(rows)
      })

    const extendVisibility = (receipt: Message.Receipt, duration: Duration.Input) =>
      Effect.gen(function*() {
        const { id, queue, readCt } = yield* claimOf(receipt, "extend_visibility")
        const rows = yield* sql`
          UPDATE pgmq.${table(queue)} SET vt = ${vtFrom(millis(duration))}
          WHERE msg_id = ${id}::bigint AND read_ct = ${readCt}::integer AND vt > clock_timestamp()
          RETURNING msg_id`.pipe(Effect.mapError(fromSqlOn("extend_visibility", queue)))
        yield* settled(receipt)(rows)
      })

    const stats = (queue: QueueName.QueueName) =>
      Effect.gen(function*() {
        const [row] = yield* sql<{
          readonly depth: number
          readonly visible: number
          readonly in_flight: number
          readonly delayed: number
          readonly oldest_age_ms: number | null
        }>`
          SELECT count(*)::integer AS depth,
                 (count(*) FILTER (WHERE vt <= clock_timestamp()))::integer AS visible,
                 (count(*) FILTER (WHERE vt > clock_timestamp() AND read_ct > 0))::integer AS in_flight,
                 (count(*) FILTER (WHERE vt > clock_timestamp() AND read_ct = 0))::integer AS delayed,
                 (extract(epoch FROM clock_timestamp() - min(enqueued_at)) * 1000)::float8 AS oldest_age_ms
          FROM pgmq.${table(queue)}`
        const dlq = QueueName.deadLetter(queue)
        const [dlqRow] = yield* sql<{ readonly found: boolean }>`
          SELECT to_regclass(${`pgmq.q_${dlq}`}::text) IS NOT NULL AS found`
        const dead = dlqRow?.found === true
          ? (yield* sql<{ readonly count: number }>`SELECT count(*)::integer AS count FROM pgmq.${table(dlq)}`)[0]
          : undefined
        const result: Messaging.QueueStats = {
          queue,
          depth: row?.depth ?? 0,
          visible: row?.visible ?? 0,
          inFlight: row?.in_flight ?? 0,
          delayed: row?.delayed ?? 0,
          ...(row?.oldest_age_ms == null ? {} : { oldestAgeMs: Math.max(0, row.oldest_age_ms) }),
          ...(dead?.count == null ? {} : { deadLettered: dead.count })
        }
        return result
      }).pipe(Effect.mapError(fromSqlOn("stats", queue)))

    const healthCheck = Effect.gen(function*() {
      const started = Date.now()
      const probe = yield* Effect.result(sql`SELECT 1`.pipe(Effect.timeout("5 seconds")))
      const push = (yield* listener.currentHealth)._tag
      const latencyMs = Date.now() - started
      return probe._tag === "Success"
        ? { provider, healthy: true, latencyMs, push }
        : { provider, healthy: false, latencyMs, push, detail: `PostgreSQL did not answer: ${probe.failure.message}` }
    })

    const subscriptions = Subscriptions.make({
      events: listener.queueEvents,
      claim: (queue, id, payload, visibilityMs) =>
        Effect.map(claimById(queue, id, visibilityMs), Option.map((row) => toQueued(queue, row, payload))),
      release: (receipt) => nack(receipt)
    })

    const messaging = Observability.instrument({
      provider,
      capabilities: {
        push: "message",
        requiresFallbackPolling: true,
        fallbackPollingInterval: options.fallbackPollingInterval === undefined
          ? defaultFallbackPollingInterval
          : Duration.fromInputUnsafe(options.fallbackPollingInterval),
        fetchById: true,
        delayedDelivery: true,
        deadLetter: true
      },
      ensureQueue,
      deleteQueue,
      queueExists,
      listQueues,
      purgeQueue,
      send,
      sendBatch,
      receive,
      fetch,
      ack: (receipt) => Effect.ensuring(ack(receipt), subscriptions.forget(receipt)),
      nack: (receipt, options) => Effect.ensuring(nack(receipt, options), subscriptions.forget(receipt)),
      extendVisibility,
      stats,
      healthCheck,
      subscribe: (queues, options) => subscriptions.subscribe(queues, millis(options.visibilityTimeout)),
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
