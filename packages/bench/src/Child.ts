/**
 * One measurement in a process of its own, started by main.ts with a `Spec`
 * as its only argument and answering with one `Answer` over IPC. A process
 * per run makes its peak RSS that run's alone, and no run inherits another's
 * heap, JIT state or connections.
 */
import { Effect } from "effect"
import os from "node:os"
import { providers } from "./Providers.ts"
import { type Answer, countsFor, type Spec } from "./Run.ts"
import { measure } from "./Workloads.ts"

const mib = (bytes: number) => bytes / 1024 / 1024

const main = async (spec: Spec): Promise<Answer> => {
  const { provider } = await providers[spec.provider]()
  const subject = provider.subjects.find((s) => s.name === spec.subject)
  if (subject === undefined) return { ok: false, error: `no subject ${spec.subject} in ${spec.provider}` }
  const counts = countsFor(spec.quick, provider.counts)
  const [workload, handlers] = spec.run.split("@") as ["w1" | "w2" | "w3", string | undefined]
  const concurrency = workload === "w1" ? 1 : workload === "w3" ? counts.chainConcurrency : Number(handlers)
  const rssBaseMiB = mib(process.memoryUsage().rss)
  const startedAt = performance.now()
  const measurement = await Effect.runPromise(measure(subject, workload, counts, concurrency))
  return {
    ok: true,
    load1: os.loadavg()[0]!,
    result: {
      provider: spec.provider,
      subject: spec.subject,
      run: spec.run,
      round: spec.round,
      measurement,
      rssPeakMiB: process.resourceUsage().maxRSS / 1024,
      rssBaseMiB,
      seconds: (performance.now() - startedAt) / 1000
    }
  }
}

const answer = (message: Answer) => process.send!(message, () => process.exit(0))

main(JSON.parse(process.argv[2]!) as Spec).then(answer, (error: unknown) =>
  answer({ ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) }))
