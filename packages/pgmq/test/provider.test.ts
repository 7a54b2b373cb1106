/**
 * What the conformance suite cannot see: the PGMQ tables behind the
 * operations, transactions shared with business writes, read_ct-guarded
 * receipts, bad input, and the single LISTEN connection.
 */
import { Messaging, MessagingError, QueueName } from "@conveyor/core"
import { PgmqListener } from "@conveyor/pgmq"
import { BadInput } from "@conveyor/testkit"
import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Option, Queue, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { testLayer, uniqueQueue } from "./support.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

const freshQueue = Effect.gen(function*() {
  const m = yield* Messaging.Messaging
  const queue = uniqueQueue()
  yield* m.ensureQueue(queue)
  yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(queue)))
  return queue
})

const count = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ readonly n: number }>`SELECT count(*)::integer AS n FROM pgmq.${sql(table)}`,
      (rows) => rows[0]!.n
    ))

const applicationName = `conveyor-pgmq-test-${Math.random().toString(36).slice(2, 8)}`

layer(testLayer({ applicationName }), { excludeTestServices: true, timeout: "30 seconds" })("pgmq provider", (it) => {
  it.effect("ack archives into pgmq.a_<name>; a receipt is good for one settlement only", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const id = yield* m.send(q, { n: 1 }, { headers: { trace: "t1" } })
      const [message] = yield* m.receive(q, long)
      yield* m.ack(message!.receipt)
      const sql = yield* SqlClient.SqlClient
      const archived = yield* sql<{ readonly msg_id: bigint; readonly read_ct: number; readonly headers: unknown }>`
        SELECT msg_id, read_ct, headers FROM pgmq.${sql(`a_${q}`)}`
      assert.deepStrictEqual(archived.map((row) => [String(row.msg_id), row.read_ct, row.headers]), [[id, 1, { trace: "t1" }]])
      assert.strictEqual((yield* Effect.flip(m.ack(message!.receipt)))._tag, "StaleReceipt")
    }))

  it.effect("a receipt guarded by read_ct never settles a later claim of the same message", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, "contended")
      const [first] = yield* m.receive(q, { max: 1, visibilityTimeout: "200 millis" })
      yield* Effect.sleep("300 millis")
      const [second] = yield* m.receive(q, long)
      assert.strictEqual(second!.receiveCount, 2)
      assert.deepInclude(first!.receipt.token as object, { readCt: 1 })
      assert.deepInclude(second!.receipt.token as object, { readCt: 2 })
      for (const settle of [m.ack(first!.receipt), m.nack(first!.receipt, { requeue: false }), m.extendVisibility(first!.receipt, "1 hour")]) {
        assert.strictEqual((yield* Effect.flip(settle))._tag, "StaleReceipt")
      }
      assert.strictEqual(yield* count(`q_${q}`), 1, "the second claim is untouched")
      yield* m.ack(second!.receipt)
    }))

  it.effect("nack without requeue moves the message to <name>_dlq in one statement", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, { poison: true }, { headers: { h: "v" } })
      const [message] = yield* m.receive(q, long)
      yield* m.nack(message!.receipt, { requeue: false })
      assert.strictEqual(yield* count(`q_${q}`), 0)
      const [dead] = yield* m.receive(QueueName.deadLetter(q), long)
      assert.deepStrictEqual(dead!.payload, { poison: true })
      assert.deepStrictEqual(dead!.headers, { h: "v" })
      assert.strictEqual((yield* m.stats(q)).deadLettered, 1)
    }))

  it.effect("a queue created by another client gets its dead-letter queue on first use", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = uniqueQueue()
      yield* sql`SELECT pgmq."create"(${q}::text)`
      yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(q)))
      yield* m.send(q, "x")
      const [message] = yield* m.receive(q, long)
      yield* m.nack(message!.receipt, { requeue: false })
      assert.strictEqual(yield* count(`q_${QueueName.deadLetter(q)}`), 1)
    }))

  it.effect("ensureQueue creates the queue and its dead-letter queue, or neither, and keeps PostgreSQL's reason", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = uniqueQueue()
      // Something else already holds the dead-letter queue's table name: its create must fail.
      yield* sql`CREATE VIEW pgmq.${sql(`q_${QueueName.deadLetter(q)}`)} AS SELECT 1 AS one`
      yield* Effect.addFinalizer(() => Effect.ignore(sql`DROP VIEW pgmq.${sql(`q_${QueueName.deadLetter(q)}`)}`))
      const error = yield* Effect.flip(m.ensureQueue(q))
      assert.strictEqual(error._tag, "ProviderError")
      assert.include(error.message, "cannot create index", "the server's own reason")
      assert.isFalse(yield* m.queueExists(q), "the main queue was not left behind")
      const [tables] = yield* sql<{ readonly n: number }>`
        SELECT count(*)::integer AS n FROM pg_tables WHERE schemaname = 'pgmq' AND tablename IN (${`q_${q}`}, ${`a_${q}`})`
      assert.strictEqual(tables!.n, 0)
    }))

  it.effect("header values other PGMQ clients wrote that are not strings are kept, as their JSON text", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = yield* freshQueue
      yield* sql`SELECT pgmq.send(${q}::text, '{"from":"sql"}'::jsonb,
        '{"tenant":"acme","n":5,"ok":true,"tags":["a","b"],"none":null}'::jsonb)`
      const [message] = yield* m.receive(q, long)
      assert.deepStrictEqual(message!.payload, { from: "sql" })
      assert.deepStrictEqual(message!.headers, { tenant: "acme", n: "5", ok: "true", tags: "[\"a\",\"b\"]", none: "null" })
    }))

  it.effect("receive and fetch by id set last_read_at, as PGMQ's read does", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = yield* freshQueue
      const [received, fetched, untouched] = yield* m.sendBatch(q, ["received", "fetched", "untouched"])
      const lastRead = Effect.map(
        sql<{ readonly msg_id: bigint; readonly last_read_at: Date | null }>`
          SELECT msg_id, last_read_at FROM pgmq.${sql(`q_${q}`)} ORDER BY msg_id`,
        (rows) => rows.map((row) => [String(row.msg_id), row.last_read_at !== null])
      )
      assert.deepStrictEqual(yield* lastRead, [[received, false], [fetched, false], [untouched, false]])
      yield* m.receive(q, { max: 1, visibilityTimeout: "30 seconds" })
      assert.isTrue(Option.isSome(yield* m.fetch(q, fetched!, { visibilityTimeout: "30 seconds" })))
      assert.deepStrictEqual(yield* lastRead, [[received, true], [fetched, true], [untouched, false]])
    }))

  it.effect("send, ack and nack join the caller's transaction: a rollback undoes them", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = yield* freshQueue
      const business = `pt_business_${Math.random().toString(36).slice(2, 8)}`
      yield* sql`CREATE TABLE ${sql(business)} (note text NOT NULL)`
      yield* Effect.addFinalizer(() => Effect.ignore(sql`DROP TABLE ${sql(business)}`))
      class Boom extends Error {}

      const rolledBack = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO ${sql(business)} (note) VALUES ('rolled back')`
        yield* m.send(q, "rolled back")
        return yield* Effect.fail(new Boom())
      })))
      assert.instanceOf(rolledBack, Boom)
      assert.strictEqual(yield* count(`q_${q}`), 0, "the message went with the business write")

      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO ${sql(business)} (note) VALUES ('committed')`
        yield* m.send(q, "committed")
      }))
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message!.payload, "committed")

      yield* Effect.flip(sql.withTransaction(Effect.andThen(m.ack(message!.receipt), Effect.fail(new Boom()))))
      assert.strictEqual(yield* count(`q_${q}`), 1, "the rolled-back ack left the message in the queue")
      yield* Effect.flip(sql.withTransaction(
        Effect.andThen(m.nack(message!.receipt, { requeue: false }), Effect.fail(new Boom()))
      ))
      assert.strictEqual(yield* count(`q_${q}`), 1, "the rolled-back dead-lettering left it too")
      assert.strictEqual(yield* count(`q_${QueueName.deadLetter(q)}`), 0)
      yield* sql.withTransaction(m.ack(message!.receipt))
      assert.strictEqual(yield* count(`q_${q}`), 0)
    }))

  it.effect("forged queue names carrying SQL never reach PostgreSQL, through any operation", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const app = `conveyor-pgmq-forged-${Math.random().toString(36).slice(2, 8)}`
      const marker = `SELECT 'before the forged names ${app}'`
      // The names every provider refuses (the conformance suite asserts the error), and one more SQL.
      const hostile = [...BadInput.hostileNames, "x\"; CREATE TABLE pgmq.pwned (i int); --"]
      // Each backend's last statement, from outside the provider's own connections.
      const lastStatements = Effect.map(
        sql<{ readonly application_name: string; readonly query: string }>`
          SELECT application_name, query FROM pg_stat_activity WHERE application_name LIKE ${`${app}%`}::text
          ORDER BY application_name`,
        (rows) => rows.map((row) => [row.application_name, row.query])
      )
      const before = yield* Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const own = yield* SqlClient.SqlClient
        yield* own.unsafe(marker)
        const before = yield* lastStatements
        const receipt = { provider: "pgmq", queue: uniqueQueue(), messageId: "1", token: { readCt: 1, claimedUs: "1" } }
        for (const name of hostile) {
          for (const [operation, attempt] of [...BadInput.everyOperation(m, name), ...BadInput.everySettlement(m, receipt, name)]) {
            yield* Effect.flip(attempt).pipe(Effect.orElseSucceed(() => assert.fail(`${operation}(${JSON.stringify(name)}) succeeded`)))
          }
        }
        assert.deepStrictEqual(yield* lastStatements, before, "no statement since the marker, on the pool or the listener")
        return before
      }).pipe(Effect.provide(testLayer({ applicationName: app, maxConnections: 1 })))
      // One pool connection (its last statement the marker) and the listener: nothing else could have run.
      assert.deepStrictEqual(before.map(([name, query]) => name === app ? query : name), [marker, `${app}:listener`])
      const [found] = yield* sql<{ readonly meta: boolean; readonly pwned: boolean }>`
        SELECT to_regclass('pgmq.meta') IS NOT NULL AS meta, to_regclass('pgmq.pwned') IS NOT NULL AS pwned`
      assert.deepStrictEqual(found, { meta: true, pwned: false })
    }))

  it.effect("a queue another client drops ends its subscription with QueueNotFound within one fallback polling interval", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const q = uniqueQueue()
      const ended = yield* Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        yield* m.ensureQueue(q)
        const subscription = yield* Stream.runDrain(m.subscribe([q], long)).pipe(Effect.forkChild)
        yield* Effect.sleep("100 millis")
        assert.isUndefined(subscription.pollUnsafe(), "it runs while the queue exists")
        // No notification tells of a drop: the subscription's next look at pgmq.meta finds it.
        yield* sql`SELECT pgmq.drop_queue(${q}::text), pgmq.drop_queue(${QueueName.deadLetter(q)}::text)`
        const dropped = yield* Effect.flip(Fiber.join(subscription)).pipe(Effect.timeoutOption("1 second"))
        return Option.getOrThrowWith(dropped, () => new Error("still running a second after the drop"))
      }).pipe(Effect.provide(testLayer({ fallbackPollingInterval: "500 millis" })))
      assert.strictEqual(ended._tag, "QueueNotFound")
      assert.strictEqual(ended._tag === "QueueNotFound" && ended.queue, q)
    }))

  it.effect("an oversize message is MessageTooLarge and nothing is stored", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const error = yield* Effect.flip(m.send(q, "x".repeat(1024 * 1024)))
      assert.instanceOf(error, MessagingError.MessageTooLarge)
      assert.strictEqual(yield* count(`q_${q}`), 0)
    }))

  it.effect("a message visible now is claimed by push at once, even when it is heard within the millisecond its ready_at was rounded up to", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const seen = yield* Queue.unbounded<string>()
      const fiber = yield* m.subscribe([q], long).pipe(
        Stream.runForEach((n) => Queue.offer(seen, n._tag === "Message" ? n.message.id : `announced ${n._tag}`)),
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis")
      // One at a time, so notifications often arrive before this process's clock passes the
      // rounded-up ready_at; each must still come claimed, not as an announcement to claim later.
      for (let i = 0; i < 50; i++) {
        const id = yield* m.send(q, { i })
        assert.strictEqual(yield* Queue.take(seen).pipe(Effect.timeout("3 seconds")), id)
      }
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a notification that is not JSON is logged and ignored; the stream survives", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = yield* freshQueue
      const seen = yield* Queue.unbounded<string>()
      const fiber = yield* m.subscribe([q], long).pipe(
        Stream.runForEach((n) => n._tag === "Message" ? Queue.offer(seen, n.message.id) : Effect.void),
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis")
      yield* sql`SELECT pg_notify('pgmq_message_ready.default', 'this is {not json')`
      yield* sql`SELECT pg_notify('pgmq_message_ready.default', '{"event_type":"message_ready"}')`
      const id = yield* m.send(q, "after the garbage")
      assert.strictEqual(yield* Queue.take(seen).pipe(Effect.timeout("3 seconds")), id)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("fifty subscribed queues share one listening backend", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const listener = yield* PgmqListener.PgmqListener
      const queues = Array.from({ length: 50 }, (_, i) => QueueName.makeUnsafe(`pt50_${i}_${Math.random().toString(36).slice(2, 6)}_queue`))
      yield* Effect.forEach(queues, (q) => m.ensureQueue(q), { concurrency: 8, discard: true })
      yield* Effect.addFinalizer(() => Effect.forEach(queues, (q) => Effect.ignore(m.deleteQueue(q)), { discard: true }))
      const seen = new Set<string>()
      const fibers = yield* Effect.forEach(queues, (q) =>
        m.subscribe([q], long).pipe(
          Stream.runForEach((n) => Effect.sync(() => n._tag === "Message" && seen.add(n.message.queue))),
          Effect.forkChild
        ))
      yield* Effect.sleep("500 millis")
      const backends = yield* sql<{ readonly pid: number; readonly query: string }>`
        SELECT pid, query FROM pg_stat_activity WHERE application_name LIKE ${`${applicationName}%`}::text
        AND query ILIKE 'LISTEN%'`
      const pid = Option.getOrThrow(yield* listener.backendPid)
      assert.deepStrictEqual([...new Set(backends.map((row) => row.pid))], [pid], "one backend LISTENs for all")
      const [channels] = yield* sql<{ readonly n: number }>`
        SELECT count(*)::integer AS n FROM pg_stat_activity WHERE application_name = ${`${applicationName}:listener`}::text`
      assert.strictEqual(channels!.n, 1)
      yield* Effect.forEach(queues, (q) => m.send(q, "hello"), { concurrency: 8, discard: true })
      for (let i = 0; i < 60 && seen.size < 50; i++) yield* Effect.sleep("50 millis")
      assert.strictEqual(seen.size, 50, "every queue got its push")
      yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
      // Creating and dropping 100 queues (DDL serializes on one lock) takes seconds on a busy machine.
    }), 30_000)
})
