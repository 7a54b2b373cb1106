/**
 * The raw ceiling on PostgreSQL: hand-written SQL with `pg` on Conveyor's own
 * schema (the `pgmq.*` functions and Conveyor's notify trigger), doing the
 * least a correct consumer can:
 * - idle: LISTEN on the queue's channel; a notification naming one message
 *   is claimed by id (one UPDATE), handled, archived — W1's path;
 * - busy: `ceil(concurrency / 16)` loops of `pgmq.read(q, vt, 16)`, the
 *   batch's handlers run at once, then one `send_batch` of the next hops
 *   they asked for and one `pgmq.archive(q, ids[])` per batch — W2/W3's path;
 * - a loop that read nothing (or claimed by id with nothing more announced)
 *   waits for the next notification, or 250 ms.
 * Sends: `pgmq.send`; batches: one `pgmq.send_batch`.
 *
 * Two of it: `raw` claims as Conveyor does, committing each claim without
 * waiting for its WAL flush (`synchronous_commit` off for that statement
 * only, DESIGN §5); `raw-flushed` waits for every flush, PostgreSQL's default.
 * Sends and archives wait for their flush in both.
 */
import { Effect } from "effect"
import type pg from "pg"
import type { Connection, Hop, Pipe, Subject } from "./Pipe.ts"
import { client, pool, url } from "./Postgres.ts"
import { tag } from "./Stats.ts"

const readBatch = 16
const visibilitySeconds = 30
const idlePollMillis = 250

/** The channel Conveyor's trigger announces `<ns>_queue` on (default notify config). */
const channelOf = (queue: string) => `pgmq_message_ready.${queue.replace(/_queue$/, "")}`

/** Installs Conveyor's schema through the provider if this database does not have it yet. */
const ensureSchema = (db: pg.Pool) =>
  Effect.gen(function*() {
    const { rows } = yield* Effect.promise(() =>
      db.query<{ ok: boolean }>("SELECT to_regprocedure('pgmq.conveyor_notify_message_ready()') IS NOT NULL AS ok")
    )
    if (rows[0]?.ok) return
    const { Pgmq } = yield* Effect.promise(() => import("@conveyor/pgmq"))
    const { Layer, Redacted } = yield* Effect.promise(() => import("effect"))
    yield* Effect.scoped(Layer.build(Pgmq.layer({ url: Redacted.make(url), maxConnections: 1 })))
  })

type Claims = "unflushed" | "flushed"

/** Conveyor's own condition: always true, and turns the flush off for the statement's transaction. */
const noFlush = "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"

/** Claim by id and batch read, as `claims` asks. */
const claimSql = (queue: string, claims: Claims) => ({
  byId: `UPDATE pgmq."q_${queue}" SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = read_ct + 1
         WHERE msg_id = $1::bigint AND vt <= clock_timestamp()${claims === "unflushed" ? ` AND ${noFlush}` : ""}
         RETURNING msg_id, message`,
  read: claims === "unflushed"
    ? `SELECT r.msg_id, r.message FROM pgmq.read($1::text, $2::integer, $3::integer) r WHERE ${noFlush}`
    : "SELECT msg_id, message FROM pgmq.read($1::text, $2::integer, $3::integer)"
})

interface Claimed {
  readonly msg_id: string
  readonly message: Hop
}

const consumer = (db: pg.Pool, listener: pg.Client, queue: string, claims: Claims) =>
(concurrency: number, step: (hop: Hop) => Hop | undefined, settled: () => void) =>
  Effect.gen(function*() {
    const sql = claimSql(queue, claims)
    const batch = Math.min(concurrency, readBatch)
    const loops = Math.max(1, Math.ceil(concurrency / readBatch))
    const announced: Array<string> = []
    const idlers = new Set<() => void>()
    const wake = () => {
      for (const resume of idlers) resume()
    }
    // A notification that came while no loop was idle: the next idle returns at once.
    let pending = false
    let stopped = false
    const onNotification = (notification: pg.Notification) => {
      try {
        const event = JSON.parse(notification.payload ?? "{}")
        if (event.queue_name !== queue) return
        if (event.msg_id !== undefined) announced.push(String(event.msg_id))
      } catch {
        return
      }
      pending = true
      wake()
    }
    const idle = () =>
      new Promise<void>((resolve) => {
        if (pending || stopped) {
          pending = false
          return resolve()
        }
        const resume = () => {
          pending = false
          idlers.delete(resume)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(resume, idlePollMillis)
        idlers.add(resume)
      })
    const settle = async (rows: ReadonlyArray<Claimed>) => {
      const next: Array<Hop> = []
      for (const row of rows) {
        const hop = step(row.message)
        if (hop !== undefined) next.push(hop)
      }
      if (next.length > 0) {
        await db.query("SELECT pgmq.send_batch($1::text, $2::jsonb[])", [queue, next.map((hop) => JSON.stringify(hop))])
      }
      await db.query("SELECT pgmq.archive($1::text, $2::bigint[])", [queue, rows.map((row) => row.msg_id)])
      for (let i = 0; i < rows.length; i++) settled()
    }
    const loop = async () => {
      while (!stopped) {
        const id = announced.shift()
        const { rows } = id !== undefined
          ? await db.query<Claimed>(sql.byId, [id, visibilitySeconds])
          : await db.query<Claimed>(sql.read, [queue, visibilitySeconds, batch])
        if (rows.length > 0) await settle(rows)
        // A read that found nothing, or a claim by id with nothing else announced: the queue is idle.
        if ((id === undefined && rows.length === 0) || (id !== undefined && announced.length === 0)) await idle()
      }
    }
    listener.on("notification", onNotification)
    yield* Effect.promise(() => listener.query(`LISTEN "${channelOf(queue)}"`))
    const running = Array.from({ length: loops }, loop)
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        stopped = true
        wake()
        await Promise.allSettled(running)
        listener.off("notification", onNotification)
        await listener.query(`UNLISTEN "${channelOf(queue)}"`)
      })
    )
  })

const pipeOn = (db: pg.Pool, listener: pg.Client, queue: string, claims: Claims): Pipe => ({
  send: (hop) => Effect.promise(() => db.query("SELECT pgmq.send($1::text, $2::jsonb)", [queue, JSON.stringify(hop)])),
  sendBatch: (hops) =>
    Effect.promise(() =>
      db.query("SELECT pgmq.send_batch($1::text, $2::jsonb[])", [queue, hops.map((hop) => JSON.stringify(hop))])
    ),
  consume: consumer(db, listener, queue, claims)
})

const subjectFor = (claims: Claims): Subject => ({
  name: claims === "unflushed" ? "raw" : "raw-flushed",
  role: "raw",
  config: `pg Pool(10) + 1 LISTEN client; claim by id when idle, else read(${readBatch}) + send_batch + archive(ids[]) per batch; ${
    claims === "unflushed" ? "claims commit without waiting for the WAL flush, as Conveyor's" : "every claim waits for its WAL flush"
  }`,
  connect: Effect.gen(function*() {
    const db = yield* pool(10)
    const listener = yield* client
    yield* ensureSchema(db)
    const connection: Connection = {
      open: (label) =>
        Effect.gen(function*() {
          const queue = `bench_${tag()}_${label}_queue`
          yield* Effect.acquireRelease(
            Effect.promise(() => db.query("SELECT pgmq.create($1::text)", [queue])),
            () => Effect.promise(() => db.query("SELECT pgmq.drop_queue($1::text)", [queue]).catch(() => undefined))
          )
          return pipeOn(db, listener, queue, claims)
        })
    }
    return connection
  })
})

export const subject = subjectFor("unflushed")
export const flushed = subjectFor("flushed")
