/**
 * The notify triggers and their wire format, observed on a raw LISTEN
 * connection, with inserts made by plain SQL (the way every PGMQ client does).
 */
import { Messaging, QueueName } from "@conveyor/core"
import { Pgmq, PgmqEvent, PgmqInstaller, PgmqNotifyConfig } from "@conveyor/pgmq"
import { PgClient, PgConnection } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Queue, Redacted, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { baseUrl, fastReconnect, freshDatabase, uniqueQueue, urlFor } from "./support.ts"

interface Heard {
  readonly channel: string
  readonly json: Record<string, unknown>
  readonly bytes: number
}

/**
 * A raw LISTEN on `channels`; what is heard about `queue` lands in the returned
 * queue. The channels are shared with every other test on the database, so
 * notifications about other queues are left out.
 */
const listenRaw = (url: string, channels: ReadonlyArray<string>, queue: string) =>
  Effect.gen(function*() {
    // Pinned once: every listen then shares the one session.
    const connection = yield* Effect.flatMap(PgConnection.make({ url: Redacted.make(url) }), (c) => c.pin)
    const heard = yield* Queue.unbounded<Heard>()
    for (const channel of channels) {
      const notifications = yield* connection.listen(channel)
      yield* Stream.fromQueue(notifications).pipe(
        Stream.map((n) => ({
          channel: n.channel,
          json: JSON.parse(n.payload) as Record<string, unknown>,
          bytes: Buffer.byteLength(n.payload, "utf8")
        })),
        Stream.filter((heardOne) => heardOne.json["queue_name"] === queue),
        Stream.runForEach((heardOne) => Queue.offer(heard, heardOne)),
        Effect.forkScoped
      )
    }
    return heard
  }).pipe(Effect.orDie)

const take = (heard: Queue.Queue<Heard>) =>
  Queue.take(heard).pipe(Effect.timeout("3 seconds"), Effect.orDie)

const nothingMore = (heard: Queue.Queue<Heard>) =>
  Effect.gen(function*() {
    yield* Effect.sleep("300 millis")
    assert.strictEqual(yield* Queue.size(heard), 0, "no further notification")
  })

const withSql = <A, E>(url: string, body: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  body.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }).pipe(Layer.orDie)))

const defaults = { notifyMaxBytes: PgmqNotifyConfig.defaultNotifyMaxBytes }

/** The shared test database, with the default notify configuration installed. */
const installedDefaults = withSql(baseUrl, PgmqInstaller.install(defaults)).pipe(Effect.orDie)

describe("notify triggers", () => {
  it.live("one visible message: message_with_payload on the namespace and global channels", () =>
    Effect.gen(function*() {
      yield* installedDefaults
      const queue = `${uniqueQueue("nt")}_queue`
      const namespace = queue.slice(0, -"_queue".length)
      const heard = yield* listenRaw(baseUrl, [`pgmq_message_ready.${namespace}`, "pgmq_message_ready", "pgmq_queue_created"], queue)
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        const created = yield* take(heard)
        assert.strictEqual(created.channel, "pgmq_queue_created")
        assert.deepInclude(created.json, { event_type: "queue_created", queue_name: queue, namespace })
        const [sent] = yield* sql<{ readonly id: bigint }>`SELECT pgmq.send(${queue}::text, '{"a":"é"}'::jsonb) AS id`
        const id = sent!.id
        const first = yield* take(heard)
        const second = yield* take(heard)
        assert.deepStrictEqual([first.channel, second.channel].sort(), [`pgmq_message_ready`, `pgmq_message_ready.${namespace}`])
        assert.deepStrictEqual(first.json, second.json)
        assert.deepInclude(first.json, {
          event_type: "message_with_payload",
          msg_id: Number(id),
          queue_name: queue,
          namespace,
          message: { a: "é" },
          delay_seconds: 0
        })
        assert.isBelow(Math.abs(new Date(first.json["ready_at"] as string).getTime() - Date.now()), 5_000)
        yield* nothingMore(heard)
        yield* sql`SELECT pgmq.drop_queue(${queue}::text)`
      }))
    }).pipe(Effect.scoped))

  it.live("a delayed message is announced with its ready time, never as ready now", () =>
    Effect.gen(function*() {
      yield* installedDefaults
      const queue = uniqueQueue("nt")
      const heard = yield* listenRaw(baseUrl, ["pgmq_message_ready.default"], queue)
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        yield* sql`SELECT pgmq.send(${queue}::text, '{"later":true}'::jsonb, 30)`
        const event = (yield* take(heard)).json
        assert.strictEqual(event["event_type"], "message_ready")
        assert.strictEqual(event["delay_seconds"], 30)
        assert.strictEqual(event["payload_omitted"], true)
        assert.notProperty(event, "message")
        const readyIn = new Date(event["ready_at"] as string).getTime() - Date.now()
        assert.isAbove(readyIn, 25_000)
        yield* sql`SELECT pgmq.drop_queue(${queue}::text)`
      }))
    }).pipe(Effect.scoped))

  it.live("ready_at is never earlier than the row's vt: rounded up to the millisecond, not truncated", () =>
    Effect.gen(function*() {
      yield* installedDefaults
      const queue = uniqueQueue("nt")
      const heard = yield* listenRaw(baseUrl, ["pgmq_message_ready.default"], queue)
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        for (let i = 0; i < 20; i++) yield* sql`SELECT pgmq.send(${queue}::text, '{"later":true}'::jsonb, 1)`
        const announced = yield* Effect.forEach(Array.from({ length: 20 }), () =>
          Effect.map(take(heard), (h) => ({ id: String(h.json["msg_id"]), at: new Date(h.json["ready_at"] as string).getTime() })))
        const [row] = yield* sql<{ readonly early: number; readonly late: number }>`
          SELECT count(*) FILTER (WHERE q.vt > to_timestamp(a.at / 1000))::integer AS early,
                 count(*) FILTER (WHERE to_timestamp(a.at / 1000) - q.vt >= interval '1 millisecond')::integer AS late
          FROM pgmq.${sql(`q_${queue}`)} q
          JOIN jsonb_to_recordset(${JSON.stringify(announced)}::jsonb) AS a(id bigint, at float8) ON a.id = q.msg_id`
        assert.deepStrictEqual(row, { early: 0, late: 0 }, "announced within the millisecond after vt")
        yield* sql`SELECT pgmq.drop_queue(${queue}::text)`
      }))
    }).pipe(Effect.scoped))

  it("a ready_at with microseconds is read as the next millisecond", () => {
    const at = (readyAt: string) => {
      const event = PgmqEvent.decode(
        "pgmq_message_ready",
        JSON.stringify({ event_type: "message_ready", msg_id: 1, queue_name: "q", namespace: "default", ready_at: readyAt, delay_seconds: 1 }),
        () => "default",
        new Date()
      )
      return Result.isSuccess(event) && event.success._tag === "MessageReady" ? event.success.readyAt.toISOString() : "not decoded"
    }
    assert.strictEqual(at("2026-12-01T10:00:00.123456+00:00"), "2026-12-01T10:00:00.124Z")
    assert.strictEqual(at("2026-12-01T10:00:00.999001+00:00"), "2026-12-01T10:00:01.000Z")
    assert.strictEqual(at("2026-12-01T10:00:00.123000+00:00"), "2026-12-01T10:00:00.123Z")
    assert.strictEqual(at("2026-12-01T10:00:00.123+00:00"), "2026-12-01T10:00:00.123Z")
  })

  it.live("the byte limit is counted in bytes: a payload too large to inline is a message_ready signal", () =>
    Effect.gen(function*() {
      yield* installedDefaults
      const queue = uniqueQueue("nt")
      const heard = yield* listenRaw(baseUrl, ["pgmq_message_ready.default"], queue)
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        // 3000 characters, 9000 bytes: fits by characters, not by bytes.
        const wide = JSON.stringify({ text: "€".repeat(3000) })
        yield* sql`SELECT pgmq.send(${queue}::text, ${wide}::jsonb)`
        const event = yield* take(heard)
        assert.strictEqual(event.json["event_type"], "message_ready")
        assert.strictEqual(event.json["payload_omitted"], true)
        // Just under the limit in bytes: inlined.
        const fits = JSON.stringify({ text: "x".repeat(7500) })
        yield* sql`SELECT pgmq.send(${queue}::text, ${fits}::jsonb)`
        const inline = yield* take(heard)
        assert.strictEqual(inline.json["event_type"], "message_with_payload")
        assert.isAtMost(inline.bytes, PgmqNotifyConfig.defaultNotifyMaxBytes)
        yield* sql`SELECT pgmq.drop_queue(${queue}::text)`
      }))
    }).pipe(Effect.scoped))

  it.live("a multi-row insert sends one batch_ready listing its ids", () =>
    Effect.gen(function*() {
      yield* installedDefaults
      const queue = uniqueQueue("nt")
      const heard = yield* listenRaw(baseUrl, ["pgmq_message_ready.default"], queue)
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        const ids = yield* sql<{ readonly id: bigint }>`
          SELECT * FROM pgmq.send_batch(${queue}::text, ARRAY['1', '2', '3']::jsonb[]) AS id`
        const event = (yield* take(heard)).json
        assert.deepInclude(event, { event_type: "batch_ready", queue_name: queue, message_count: 3, delay_seconds: 0 })
        assert.deepStrictEqual(event["msg_ids"], ids.map((row) => Number(row.id)))
        yield* nothingMore(heard)
        yield* sql`SELECT pgmq.drop_queue(${queue}::text)`
      }))
    }).pipe(Effect.scoped))

  it.live("queues created later by any client notify too", () =>
    Effect.gen(function*() {
      yield* installedDefaults
      const queue = uniqueQueue("nt")
      const heard = yield* listenRaw(baseUrl, ["pgmq_message_ready.default"], queue)
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // Created after the install, by plain SQL, not by Conveyor.
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        const [trigger] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::integer AS n FROM pg_trigger
          WHERE tgrelid = to_regclass(${`pgmq.q_${queue}`}::text) AND tgname = 'conveyor_notify'`
        assert.strictEqual(trigger!.n, 1)
        yield* sql`INSERT INTO pgmq.${sql(`q_${queue}`)} (vt, message) VALUES (clock_timestamp(), '{"raw":1}'::jsonb)`
        assert.strictEqual((yield* take(heard)).json["event_type"], "message_with_payload")
        yield* sql`SELECT pgmq.drop_queue(${queue}::text)`
      }))
    }).pipe(Effect.scoped))

  it.live("prefix, pattern and byte limit are configurable; the TypeScript side agrees with the SQL", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase
      const url = urlFor(database)
      const config = yield* PgmqNotifyConfig.make({
        channelPrefix: "app",
        queuePattern: "^(?:x_)?(?<namespace>[a-z]+)_jobs$",
        notifyMaxBytes: 512
      })
      yield* withSql(url, PgmqInstaller.install(config)).pipe(Effect.orDie)
      const heard = yield* listenRaw(url, ["app.pgmq_message_ready.billing", "app.pgmq_queue_created"], "x_billing_jobs")
      yield* withSql(url, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pgmq."create"('x_billing_jobs')`
        assert.deepInclude((yield* take(heard)).json, { event_type: "queue_created", namespace: "billing" })
        yield* sql`SELECT * FROM pgmq.send_batch('x_billing_jobs', array(SELECT '{}'::jsonb FROM generate_series(1, 500)))`
        const batch = yield* take(heard)
        assert.strictEqual(batch.json["event_type"], "batch_ready")
        assert.strictEqual(batch.json["message_count"], 500)
        const listed = batch.json["msg_ids"] as ReadonlyArray<number>
        assert.isAbove(listed.length, 0)
        assert.isBelow(listed.length, 500, "the id list is cut to fit")
        assert.isAtMost(batch.bytes, 512)
        for (const name of ["x_billing_jobs", "billing_jobs", "other", "worker_a_queue"]) {
          const [row] = yield* sql<{ readonly ns: string }>`SELECT pgmq.conveyor_queue_namespace(${name}::text) AS ns`
          assert.strictEqual(PgmqNotifyConfig.namespaceOf(config, name), row!.ns, name)
        }
        // The default rules, on the shared database.
        yield* installedDefaults
      }))
      yield* withSql(baseUrl, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (const name of ["orchestration_step_results", "worker_billing_queue", "orders_queue", "plain", "a_queue_queue"]) {
          const [row] = yield* sql<{ readonly ns: string }>`SELECT pgmq.conveyor_queue_namespace(${name}::text) AS ns`
          assert.strictEqual(PgmqNotifyConfig.namespaceOf(defaults, name), row!.ns, name)
        }
      }))
    }).pipe(Effect.scoped))

  it.live("bad configurations are refused before they reach SQL", () =>
    Effect.gen(function*() {
      for (const input of [
        { notifyMaxBytes: 9000 },
        { channelPrefix: "has space" },
        { queuePattern: "(\\w+)_queue" },
        { queuePattern: "(?<namespace>[)" },
        { queuePattern: "(?<namespace>\\w+)'; drop table x; --" }
      ]) {
        const error = yield* Effect.flip(PgmqNotifyConfig.make(input))
        assert.strictEqual(error._tag, "InvalidNotifyConfig", JSON.stringify(input))
      }
    }))

  it.live("with only the extension's INSERT notification, subscriptions still hear about messages", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase
      const url = urlFor(database)
      const queue = QueueName.makeUnsafe("ext_only")
      yield* withSql(url, Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* PgmqInstaller.install(defaults, { notify: false })
        yield* sql`SELECT pgmq."create"(${queue}::text)`
        yield* sql`SELECT pgmq."create"(${`${queue}_dlq`}::text)`
        // What the extension's pgmq.enable_notify_insert installs.
        yield* sql.unsafe(`CREATE FUNCTION pgmq.notify_queue_listeners() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM pg_notify('pgmq.' || TG_TABLE_NAME || '.' || TG_OP, NULL); RETURN NEW; END $$`).unprepared
        yield* sql.unsafe(`CREATE CONSTRAINT TRIGGER trigger_notify_queue_insert_listeners AFTER INSERT ON pgmq.q_${queue}
          DEFERRABLE FOR EACH ROW EXECUTE PROCEDURE pgmq.notify_queue_listeners()`).unprepared
      })).pipe(Effect.orDie)
      yield* Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const seen = yield* Queue.unbounded<string>()
        const fiber = yield* m.subscribe([queue], { visibilityTimeout: "10 seconds" }).pipe(
          Stream.runForEach((n) => Queue.offer(seen, n._tag === "Available" ? `available:${Option.isNone(n.messageId)}` : "message")),
          Effect.forkChild
        )
        yield* Effect.sleep("200 millis")
        yield* m.send(queue, { via: "extension channel" })
        assert.strictEqual(yield* Queue.take(seen).pipe(Effect.timeout("3 seconds")), "available:true")
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(Pgmq.layer({ url: Redacted.make(url), install: false, reconnect: fastReconnect })))
    }).pipe(Effect.scoped))
})
