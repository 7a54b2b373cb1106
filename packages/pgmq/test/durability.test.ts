/**
 * Claims commit without waiting for the WAL flush; nothing else does, and
 * inside the caller's transaction a claim leaves the caller's durability
 * alone. Seen from the server: a row trigger on the queue table records the
 * `synchronous_commit` in force when each claim (or nack) touched a row.
 * And what a claim undone by a server crash leaves behind: the next claim
 * has the same `read_ct`, and the undone claim's receipt is stale for it.
 */
import { Messaging } from "@conveyor/core"
import { assert, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Queue, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { testLayer, uniqueQueue } from "./support.ts"

const visibility = { visibilityTimeout: "30 seconds" } as const

/** A queue whose row updates are recorded, and what was recorded, in order. */
const watchedQueue = Effect.gen(function*() {
  const m = yield* Messaging.Messaging
  const sql = yield* SqlClient.SqlClient
  const queue = uniqueQueue("dt")
  const seen = `${queue}_seen`
  yield* m.ensureQueue(queue)
  yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(queue)))
  yield* sql`CREATE TABLE ${sql(seen)} (at serial, msg_id bigint, setting text)`
  yield* Effect.addFinalizer(() => Effect.ignore(sql`DROP TABLE ${sql(seen)}`))
  yield* sql.unsafe(`CREATE FUNCTION ${seen}_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO ${seen} (msg_id, setting) VALUES (NEW.msg_id, current_setting('synchronous_commit')); RETURN NULL; END $$`)
    .unprepared
  yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP FUNCTION ${seen}_record() CASCADE`).unprepared))
  yield* sql.unsafe(`CREATE TRIGGER record AFTER UPDATE ON pgmq.q_${queue} FOR EACH ROW EXECUTE FUNCTION ${seen}_record()`)
    .unprepared
  const recorded = Effect.map(
    sql<{ readonly msg_id: bigint; readonly setting: string }>`SELECT msg_id, setting FROM ${sql(seen)} ORDER BY at`,
    (rows) => rows.map((row) => [String(row.msg_id), row.setting])
  )
  return { queue, recorded }
})

layer(testLayer(), { excludeTestServices: true, timeout: "30 seconds" })("pgmq claim durability", (it) => {
  it.effect("receive, fetch and push claims commit without the flush; a nack, and a claim inside the caller's transaction, keep it", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const { queue, recorded } = yield* watchedQueue
      const [received, fetched] = yield* m.sendBatch(queue, ["received", "fetched"])
      const [claim] = yield* m.receive(queue, { max: 1, ...visibility })
      assert.strictEqual(claim!.id, received)
      assert.isTrue(Option.isSome(yield* m.fetch(queue, fetched!, visibility)))

      const delivered = yield* Queue.unbounded<string>()
      const subscription = yield* m.subscribe([queue], visibility).pipe(
        Stream.runForEach((n) => n._tag === "Message" ? Queue.offer(delivered, n.message.id) : Effect.void),
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis")
      const pushed = yield* m.send(queue, "pushed")
      assert.strictEqual(yield* Queue.take(delivered).pipe(Effect.timeout("3 seconds")), pushed)
      yield* Fiber.interrupt(subscription)

      yield* m.nack(claim!.receipt)
      const inside = yield* sql.withTransaction(Effect.gen(function*() {
        const [again] = yield* m.receive(queue, { max: 1, ...visibility })
        const [setting] = yield* sql<{ readonly s: string }>`SELECT current_setting('synchronous_commit') AS s`
        return [again!.id, setting!.s]
      }))
      assert.deepStrictEqual(inside, [received, "on"], "the caller's transaction keeps its flush")
      assert.deepStrictEqual(yield* recorded, [
        [received, "off"],
        [fetched, "off"],
        [pushed, "off"],
        [received, "on"],
        [received, "on"]
      ])
      const [session] = yield* sql<{ readonly s: string }>`SELECT current_setting('synchronous_commit') AS s`
      assert.strictEqual(session!.s, "on", "nothing outlives the claim's own transaction")
    }))

  it.effect("a claim undone as crash recovery undoes it: the next claim has the same read_ct, and the undone claim's receipt settles nothing", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      const sql = yield* SqlClient.SqlClient
      const { queue } = yield* watchedQueue
      const id = yield* m.send(queue, "claimed twice")
      const [undone] = yield* m.receive(queue, { max: 1, ...visibility })
      // What recovery leaves when the claim's commit never reached the disk: the row as it was.
      yield* sql`UPDATE pgmq.${sql(`q_${queue}`)} SET read_ct = read_ct - 1, last_read_at = NULL,
                 vt = clock_timestamp() - interval '1 second' WHERE msg_id = ${id}::bigint`
      const [next] = yield* m.receive(queue, { max: 1, ...visibility })
      assert.deepStrictEqual([next!.id, next!.receiveCount], [id, undone!.receiveCount])
      const settles = [
        m.extendVisibility(undone!.receipt, "1 second"),
        m.nack(undone!.receipt),
        m.nack(undone!.receipt, { requeue: false }),
        m.ack(undone!.receipt)
      ]
      for (const settle of settles) {
        const exit = yield* Effect.exit(settle)
        assert.isTrue(
          Exit.isFailure(exit) && Exit.findErrorOption(exit).pipe(Option.exists((e) => e._tag === "StaleReceipt")),
          "the undone claim's receipt is stale"
        )
      }
      // Together in one batched statement too: only the current claim settles.
      const [old, current] = yield* Effect.all([Effect.exit(m.ack(undone!.receipt)), Effect.exit(m.ack(next!.receipt))], {
        concurrency: "unbounded"
      })
      assert.isTrue(Exit.isFailure(old!), "the undone claim's receipt, batched with the current one")
      assert.isTrue(Exit.isSuccess(current!), "the current claim's receipt")
    }))
})
