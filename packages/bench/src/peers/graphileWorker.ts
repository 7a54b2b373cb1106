/**
 * graphile-worker 0.18 with its documented defaults (LISTEN/NOTIFY on job
 * insert, 2 s poll, its own pool), `concurrency` = the workload's handlers.
 * Each queue is a task name of its own; sends are `addJob`, batches
 * `addJobs`, the handler's next hop `helpers.addJob`. Settled on its
 * `job:complete` event (the completion is written back by then).
 */
import { Effect } from "effect"
import type { Connection, Hop, Subject } from "../Pipe.ts"
import { url, vacuum } from "../Postgres.ts"
import { tag } from "../Stats.ts"

const jobTables = ["graphile_worker._private_jobs", "graphile_worker._private_tasks", "graphile_worker._private_job_queues"]

export const subject: Subject = {
  name: "graphile-worker",
  role: "peer",
  config: "graphile-worker 0.18 defaults (LISTEN/NOTIFY, pollInterval 2 s); concurrency = handlers",
  connect: Effect.gen(function*() {
    const worker = yield* Effect.promise(() => import("graphile-worker"))
    const logger = new worker.Logger(() => (level, message) => {
      if (level === "error") process.stderr.write(`graphile-worker: ${message}\n`)
    })
    yield* Effect.promise(() => worker.runMigrations({ connectionString: url, logger }))
    yield* vacuum(jobTables)
    const utils = yield* Effect.acquireRelease(
      Effect.promise(() => worker.makeWorkerUtils({ connectionString: url, logger })),
      (u) => Effect.promise(async () => await u.release())
    )
    const connection: Connection = {
      open: (label) =>
        Effect.sync(() => {
          const task = `bench_${tag()}_${label}`
          return {
            send: (hop) => Effect.promise(() => utils.addJob(task, hop)),
            sendBatch: (hops) => Effect.promise(() => utils.addJobs(hops.map((payload) => ({ identifier: task, payload })))),
            consume: (concurrency, step, settled) =>
              Effect.gen(function*() {
                const runner = yield* Effect.acquireRelease(
                  Effect.promise(() =>
                    worker.run({
                      connectionString: url,
                      concurrency,
                      noHandleSignals: true,
                      logger,
                      taskList: {
                        [task]: async (payload, helpers) => {
                          const next = step(payload as Hop)
                          if (next !== undefined) await helpers.addJob(task, next)
                        }
                      }
                    })
                  ),
                  (r) => Effect.promise(() => r.stop())
                )
                runner.events.on("job:complete", ({ job }) => {
                  if (job.task_identifier === task) settled()
                })
              })
          }
        })
    }
    return connection
  })
}
