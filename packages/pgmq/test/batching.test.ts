/**
 * Batched statements, seen in the tables: rows written by one statement
 * carry one transaction id (`xmin`), rows written by separate autocommit
 * statements carry one each. Also: work inside the caller's transaction is
 * never batched with work outside it.
 */
import { type Message, Messaging, Observability, type QueueName } from "@conveyor/core"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Metric, Queue, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { testLayer, uniqueQueue } from "./support.ts"

const long = { max: 100, visibilityTimeout: "30 seconds" } as const

const freshQueue = Effect.gen(function*() {
  const m = yield* Messaging.Messaging
  const queue = uniqueQueue("bt")
  yield* m.ensureQueue(queue)
  yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(queue)))
  return queue
})

/** How many transactions last wrote the rows of `table` (optionally only `ids`). */
const writers = (table: string, ids?: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ readonly n: number }>`
        SELECT count(DISTINCT xmin::text)::integer AS n FROM pgmq.${sql(table)}
        WHERE ${ids === undefined ? sql`true` : sql`msg_id = ANY(${`{${ids.join(",")}}`}::bigint[])`}`,
      (rows) => rows[0]!.n
    ))

const bodies = (queue: QueueName.QueueName) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ readonly message: unknown }>`SELECT message FROM pgmq.${sql(`q_${queue}`)} ORDER BY msg_id`,
      (rows) => rows.map((row) => row.message)
    ))

layer(testLayer(), { excludeTestServices: true, timeout: "30 seconds" })("pgmq batching", (it) => {
  it.effect("concurrent sends are one INSERT; each caller gets its own id, in order", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const ids = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => m.send(q, { i }), {
        concurrency: "unbounded"
      })
      assert.strictEqual(new Set(ids).size, 20)
      assert.deepStrictEqual(ids.map(BigInt), [...ids].map(BigInt).sort((a, b) => (a < b ? -1 : 1)))
      assert.deepStrictEqual(yield* bodies(q), Array.from({ length: 20 }, (_, i) => ({ i })))
      assert.strictEqual(yield* writers(`q_${q}`), 1, "one statement")
      const one = yield* m.send(q, "alone")
      assert.strictEqual(yield* writers(`q_${q}`, [one]), 1)
      assert.strictEqual(yield* writers(`q_${q}`), 2, "a lone send is its own statement")
    }))

  it.effect("concurrent sends with different delays: one INSERT per delay, the undelayed visible at once", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const delays = [0, 60_000, 0, 120_000, 60_000, 0]
      const ids = yield* Effect.forEach(delays, (delay, i) => m.send(q, { i }, { delay: `${delay} millis` }), {
        concurrency: "unbounded"
      })
      const of = (delay: number) => ids.filter((_, i) => delays[i] === delay)
      assert.deepStrictEqual(
        [yield* writers(`q_${q}`, of(0)), yield* writers(`q_${q}`, of(60_000)), yield* writers(`q_${q}`, of(120_000))],
        [1, 1, 1]
      )
      assert.strictEqual(yield* writers(`q_${q}`), 3)
      const visible = yield* m.receive(q, long)
      assert.deepStrictEqual(visible.map((message) => message.id), of(0))
    }))

  it.effect("a batch_ready of many ids is one claim, delivered by push with last_read_at set", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = yield* freshQueue
      const pushedBefore = (yield* Metric.value(Observability.receivedOn("push"))).count
      const delivered = yield* Queue.unbounded<string>()
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch: 100 }).pipe(
        Stream.runForEach((n) => n._tag === "Message" ? Queue.offer(delivered, n.message.id) : Effect.die(`announced ${n._tag}`)),
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis")
      const ids = yield* m.sendBatch(q, Array.from({ length: 50 }, (_, i) => i))
      const got = yield* Effect.forEach(ids, () => Queue.take(delivered).pipe(Effect.timeout("3 seconds")))
      assert.deepStrictEqual([...got].sort(), [...ids].sort())
      assert.strictEqual(yield* writers(`q_${q}`), 1, "claimed by one UPDATE")
      const [read] = yield* sql<{ readonly unread: number }>`
        SELECT count(*) FILTER (WHERE last_read_at IS NULL)::integer AS unread FROM pgmq.${sql(`q_${q}`)}`
      assert.strictEqual(read!.unread, 0)
      assert.strictEqual((yield* Metric.value(Observability.receivedOn("push"))).count - pushedBefore, 50)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("concurrent receives are one claim per visibility timeout, each caller its own batch; a short claim fills the first callers", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const ids = yield* m.sendBatch(q, Array.from({ length: 20 }, (_, i) => i))
      const thirty = { max: 8, visibilityTimeout: "30 seconds" } as const
      const asks = [thirty, thirty, { max: 3, visibilityTimeout: "60 seconds" }] as const
      const got = yield* Effect.forEach(asks, (options) => m.receive(q, options), { concurrency: "unbounded" })
      assert.deepStrictEqual(got.map((batch) => batch.length), [8, 8, 3])
      const of = (i: number) => got[i]!.map((message) => message.id)
      assert.strictEqual(yield* writers(`q_${q}`, [...of(0), ...of(1)]), 1, "one claim for the 30 s receives")
      assert.strictEqual(yield* writers(`q_${q}`, of(2)), 1)
      assert.strictEqual(yield* writers(`q_${q}`), 3, "one for the 60 s one, and the message left")
      const rest = yield* Effect.forEach([thirty, thirty], (options) => m.receive(q, options), { concurrency: "unbounded" })
      assert.deepStrictEqual(rest.map((batch) => batch.length), [1, 0], "the first caller's batch is filled first")
      const claimed = [...got, ...rest].flat()
      assert.deepStrictEqual(claimed.map((message) => message.id).sort(), [...ids].sort(), "every message claimed once")
      yield* Effect.forEach(claimed, (message) => m.ack(message.receipt), { discard: true })
    }))

  it.effect("a subscription interrupted while its batched claims run: what it emitted stays the caller's, everything else is visible again at once", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      const emitted = yield* Queue.unbounded<Message.QueuedMessage>()
      // The reader takes three and then stalls: the batch's other claims run (prefetch 10) while it is interrupted.
      const fiber = yield* m.subscribe([q], { visibilityTimeout: "30 seconds", prefetch: 10 }).pipe(
        Stream.runForEach((n) =>
          n._tag !== "Message"
            ? Effect.die(`announced ${n._tag}`)
            : Effect.flatMap(Queue.offer(emitted, n.message), () =>
              Effect.flatMap(Queue.size(emitted), (size) => size >= 3 ? Effect.never : Effect.void))
        ),
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis")
      const ids = yield* m.sendBatch(q, Array.from({ length: 50 }, (_, i) => i))
      const taken = yield* Effect.forEach([1, 2, 3], () => Queue.take(emitted).pipe(Effect.timeout("3 seconds")))
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* Queue.size(emitted), 0, "nothing emitted after the reader stalled")
      const back = yield* m.receive(q, long)
      const takenIds = taken.map((message) => message.id)
      assert.deepStrictEqual(
        [...back.map((message) => message.id), ...takenIds].sort(),
        [...ids].sort(),
        "each message either emitted or visible again at once, none lost, none both"
      )
      // The emitted ones are still claimed for the caller: they settle after the end.
      yield* Effect.forEach(taken, (message) => m.ack(message.receipt), { discard: true })
      yield* Effect.forEach(back, (message) => m.ack(message.receipt), { discard: true })
      assert.deepStrictEqual(yield* m.receive(q, long), [], "all settled")
    }))

  it.effect("concurrent acks are one statement; a stale receipt among them fails only its caller", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.sendBatch(q, Array.from({ length: 10 }, (_, i) => i))
      const messages = yield* m.receive(q, long)
      const staleOne = messages[3]!
      yield* m.ack(staleOne.receipt)
      const results = yield* Effect.forEach(messages, (message) => Effect.result(m.ack(message.receipt)), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(
        results.map((r) => r._tag === "Success" ? "acked" : r.failure._tag),
        messages.map((message) => message === staleOne ? "StaleReceipt" : "acked")
      )
      const fresh = messages.filter((message) => message !== staleOne).map((message) => message.id)
      assert.strictEqual(yield* writers(`a_${q}`, fresh), 1, "the nine were archived by one statement")
      assert.strictEqual(yield* writers(`a_${q}`), 2)
    }))

  it.effect("an older claim of a message settled alongside its current claim: only the current one settles", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.send(q, "twice claimed")
      const [older] = yield* m.receive(q, { max: 1, visibilityTimeout: "200 millis" })
      const [current] = yield* m.receive(q, long).pipe(Effect.delay("300 millis"))
      assert.strictEqual(current!.receiveCount, 2)
      for (const settle of [
        (receipt: typeof older.receipt) => m.extendVisibility(receipt, "30 seconds"),
        (receipt: typeof older.receipt) => m.ack(receipt)
      ]) {
        // Older first: a batch that matched rows by id alone would credit it with the current claim.
        const results = yield* Effect.forEach([older!, current!], (message) => Effect.result(settle(message.receipt)), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(results.map((r) => r._tag === "Success" ? "ok" : r.failure._tag), ["StaleReceipt", "ok"])
      }
      assert.deepStrictEqual(yield* bodies(q), [], "the current claim was acked")
    }))

  it.effect("concurrent nacks and dead-letter moves are one statement each, per receipt", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const q = yield* freshQueue
      yield* m.sendBatch(q, Array.from({ length: 8 }, (_, i) => i))
      const messages = yield* m.receive(q, long)
      const [requeued, dead] = [messages.slice(0, 4), messages.slice(4)]
      yield* m.ack(dead[0]!.receipt)
      const results = yield* Effect.forEach([
        ...requeued.map((message, i) => m.nack(message.receipt, { delay: `${i * 100} millis` })),
        ...dead.map((message) => m.nack(message.receipt, { requeue: false }))
      ], Effect.result, { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => r._tag === "Success" ? "ok" : r.failure._tag), [
        "ok", "ok", "ok", "ok", "StaleReceipt", "ok", "ok", "ok"
      ])
      assert.strictEqual(yield* writers(`q_${q}`, requeued.map((message) => message.id)), 1, "one UPDATE")
      assert.strictEqual(yield* writers(`q_${q}_dlq`), 1, "one move")
      const again = yield* m.receive(q, long).pipe(Effect.delay("500 millis"))
      assert.deepStrictEqual(again.map((message) => message.id).sort(), requeued.map((message) => message.id).sort())
      const stats = yield* m.stats(q)
      assert.strictEqual(stats.deadLettered, 3)
    }))

  it.effect("work inside the caller's transaction is never batched with work outside it", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const q = yield* freshQueue
      yield* m.sendBatch(q, ["held inside", "held outside"])
      const [inside, outside] = yield* m.receive(q, long)
      // Issued side by side, in the same instant: one call carries the transaction, its twin does not.
      const outsideOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.updateContext(effect, Context.omit(sql.transactionService) as (c: Context.Context<R>) => Context.Context<R>)
      class Boom extends Error {}
      const error = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
        yield* Effect.all([m.send(q, "sent inside"), outsideOf(m.send(q, "sent outside"))], { concurrency: "unbounded" })
        yield* Effect.all([m.ack(inside!.receipt), outsideOf(m.ack(outside!.receipt))], { concurrency: "unbounded" })
        return yield* Effect.fail(new Boom())
      })))
      assert.instanceOf(error, Boom)
      assert.deepStrictEqual(yield* bodies(q), ["held inside", "sent outside"], "the inside send and ack rolled back")
      const [archived] = yield* sql<{ readonly message: unknown }>`SELECT message FROM pgmq.${sql(`a_${q}`)}`
      assert.strictEqual(archived!.message, "held outside")
    }))
})
