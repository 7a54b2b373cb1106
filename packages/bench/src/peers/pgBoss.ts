/**
 * pg-boss 12.38, in two set-ups:
 * - `notify`: `useListenNotify: true` and queues created with `notify: true`
 *   (workers woken by NOTIFY; 30 s backstop poll);
 * - `poll`: its default, polling every 2 s.
 * Otherwise its documented defaults, but for what expresses the workload:
 * one handler is `work({ localConcurrency: 1 })`; N ≥ 16 handlers are
 * `localConcurrency: N / 16` workers each fetching `batchSize: 16` with
 * `burstWhenBatchFull` (without it each worker sleeps its poll interval
 * after every fetch, and a preloaded queue drains at a few messages a
 * second), the batch's jobs handled at once. Sends are `send`, batches
 * `insert`, the handler's next hop `send`. Settled when the handler returns
 * (pg-boss completes the batch right after; it gives no event for it).
 */
import { Effect } from "effect"
import type { Connection, Hop, Subject } from "../Pipe.ts"
import { url, vacuum } from "../Postgres.ts"
import { tag } from "../Stats.ts"

const workerBatch = 16

const make = (mode: "notify" | "poll"): Subject => ({
  name: `pg-boss (${mode})`,
  role: "peer",
  config: mode === "notify"
    ? "pg-boss 12.38, useListenNotify + queue notify; N ≥ 16 handlers = N/16 workers × batchSize 16, burstWhenBatchFull; W1: one worker"
    : "pg-boss 12.38, default polling (2 s); N ≥ 16 handlers = N/16 workers × batchSize 16, burstWhenBatchFull; W1: one worker",
  // A polling worker waits ~1 s per W1 sample: fewer samples keep the run short.
  ...(mode === "poll" ? { latencySampleScale: 0.02, maxRounds: 1 } : {}),
  connect: Effect.gen(function*() {
    const { PgBoss } = yield* Effect.promise(() => import("pg-boss"))
    const boss = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const boss = new PgBoss({ connectionString: url, useListenNotify: mode === "notify" })
        boss.on("error", (error) => process.stderr.write(`pg-boss: ${error.message}\n`))
        await boss.start()
        return boss
      }),
      (boss) => Effect.promise(() => boss.stop({ graceful: false, close: true }))
    )
    yield* vacuum(["pgboss.job", "pgboss.queue"])
    const connection: Connection = {
      open: (label) =>
        Effect.gen(function*() {
          const name = `bench_${tag()}_${label}`
          yield* Effect.acquireRelease(
            Effect.promise(() => boss.createQueue(name, mode === "notify" ? { notify: true } : {})),
            () => Effect.promise(() => boss.deleteQueue(name).catch(() => undefined))
          )
          return {
            send: (hop) => Effect.promise(() => boss.send(name, hop)),
            sendBatch: (hops) => Effect.promise(() => boss.insert(name, hops.map((data) => ({ data })))),
            consume: (concurrency, step, settled) => {
              const handle = async (hop: Hop) => {
                const next = step(hop)
                if (next !== undefined) await boss.send(name, next)
              }
              const options = concurrency === 1
                ? { localConcurrency: 1 }
                : {
                  localConcurrency: Math.max(1, Math.round(concurrency / workerBatch)),
                  batchSize: Math.min(concurrency, workerBatch),
                  burstWhenBatchFull: true
                }
              return Effect.acquireRelease(
                Effect.promise(() =>
                  boss.work<Hop>(name, options, async (jobs) => {
                    await Promise.all(jobs.map((job) => handle(job.data)))
                    for (let i = 0; i < jobs.length; i++) settled()
                  })
                ),
                () => Effect.promise(() => boss.offWork(name))
              ).pipe(Effect.asVoid)
            }
          }
        })
    }
    return connection
  })
})

export const notify = make("notify")
export const poll = make("poll")
