/**
 * `npm run bench [-- <selection…>] [--quick] [--rounds n]`: plans the runs
 * (provider × workload run × subject × round), runs each in a process of its
 * own, one after another (never two at once: they would compete for the
 * same cores), alternating the subjects' order round by round, prints a
 * section per provider and a summary of the bars, and writes everything to
 * bench-results/.
 *
 * Selection words: see Plan.ts; without words (or `BENCH_ONLY`), everything.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Config, Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { mkdir, writeFile } from "node:fs/promises"
import os from "node:os"
import { fileURLToPath } from "node:url"
import type * as Bars from "./Bars.ts"
import { plan, select } from "./Plan.ts"
import { providerNames, providers } from "./Providers.ts"
import * as Report from "./Report.ts"
import { format, type Lookup, lookup, metrics, metricsOf, type Result, valueOf } from "./Results.ts"
import { type Answer, countsFor, runChild } from "./Run.ts"

const resultsDir = new URL("../../../bench-results/", import.meta.url)

const say = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

const describe = (result: Result) =>
  metricsOf(result.run).map((metric) => {
    const { label, unit } = metrics[metric]
    return `${label} ${format(valueOf(result, metric), unit)} ${unit}`
  }).join(", ")

/** run → metric → subject → median, for readers of the JSON. */
const medians = (section: Report.Section, get: Lookup) =>
  Object.fromEntries(section.runs.map((run) => [
    run,
    Object.fromEntries(metricsOf(run).map((metric) => [
      metric,
      Object.fromEntries(section.subjects.map((subject) => [subject, get(subject, run, metric) ?? null]))
    ]))
  ]))

const writeResults = (data: unknown) =>
  Effect.promise(async () => {
    await mkdir(resultsDir, { recursive: true })
    const text = `${JSON.stringify(data, null, 2)}\n`
    const stamped = new URL(`bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, resultsDir)
    await writeFile(stamped, text)
    await writeFile(new URL("latest.json", resultsDir), text)
    return fileURLToPath(stamped)
  })

const bench = Command.make("bench", {
  selection: Argument.String("selection").pipe(
    Argument.withDescription("Providers (memory, pgmq, rabbitmq, redis, sqs), workloads (w1, w2, w3), subjects (raw, graphile-worker, pg-boss…)"),
    Argument.variadic()
  ),
  quick: Flag.Boolean("quick").pipe(
    Flag.withDescription("Small counts, one round: checks that everything runs (its ratios mean little)"),
    Flag.withFallbackConfig(Config.Boolean("BENCH_QUICK").pipe(Config.withDefault(false)))
  ),
  rounds: Flag.Int("rounds").pipe(
    Flag.withDescription("Runs of each subject per workload, alternating; medians reported (default 3, 1 with --quick)"),
    Flag.withFallbackConfig(Config.Int("BENCH_ROUNDS")),
    Flag.optional
  )
}, ({ quick, rounds: roundsOption, selection }) =>
  Effect.gen(function*() {
    const words = selection.length > 0 ? selection : (process.env["BENCH_ONLY"] ?? "").split(/[\s,]+/).filter((w) => w !== "")
    const loaded = yield* Effect.forEach(providerNames, (name) => Effect.promise(() => providers[name]()))
    const chosen = yield* select(words, loaded.map((m) => m.provider))
    const rounds = Option.getOrElse(roundsOption, () => (quick ? 1 : 3))
    const sections = providerNames
      .map((name, i) => ({ name, provider: loaded[i]!.provider }))
      .filter(({ name }) => chosen.providers.length === 0 || chosen.providers.includes(name))
      .map(({ name, provider }) => ({ name, provider, ...plan(provider, name, chosen, quick, rounds) }))
      .filter((s) => s.planned.length > 0)
    const total = sections.reduce((n, s) => n + s.planned.length, 0)
    yield* say(`${total} runs, ${rounds} round(s)${quick ? ", quick counts" : ""}; each in a process of its own`)
    const startedAt = performance.now()
    const results: Array<Result> = []
    const failures: Array<{ readonly label: string; readonly error: string }> = []
    const reports: Array<Report.Section> = []
    let done = 0
    for (const s of sections) {
      const loadBefore = os.loadavg()
      yield* say(`${s.name}: load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`)
      const sectionResults: Array<Result> = []
      for (const { label, spec } of s.planned) {
        // A run past its own limit fails itself; this catches one stuck closing its connections.
        const answer = yield* runChild(spec).pipe(
          Effect.timeoutOrElse({
            duration: `${countsFor(quick, s.provider.counts).limitSeconds * 2} seconds`,
            orElse: () => Effect.succeed<Answer>({ ok: false, error: "measuring process did not finish; killed" })
          })
        )
        done++
        const elapsedSeconds = (performance.now() - startedAt) / 1000
        const left = ((elapsedSeconds / done) * (total - done)).toFixed(0)
        const elapsed = `${elapsedSeconds.toFixed(0)} s, ~${left} s left`
        if (answer.ok) {
          sectionResults.push(answer.result)
          yield* say(
            `[${done}/${total}, ${elapsed}] ${label}: ${describe(answer.result)} (${answer.result.seconds.toFixed(1)} s, load ${
              answer.load1.toFixed(2)
            })`
          )
        } else {
          failures.push({ label, error: answer.error })
          yield* say(`[${done}/${total}, ${elapsed}] ${label}: FAILED: ${answer.error}`)
        }
      }
      results.push(...sectionResults)
      const get = lookup(sectionResults)
      const verdicts = s.provider.bars.flatMap((bar: Bars.Bar) => {
        const verdict = bar.evaluate(get)
        return verdict === undefined ? [] : [{ bar: bar.text, verdict }]
      })
      const report = {
        provider: s.provider,
        counts: countsFor(quick, s.provider.counts),
        subjects: s.subjects,
        runs: s.runs,
        loadBefore,
        loadAfter: os.loadavg(),
        verdicts
      }
      reports.push(report)
      yield* Console.log(`${Report.section(report, get)}\n`)
    }
    yield* Console.log(Report.summary(reports))
    if (failures.length > 0) {
      yield* Console.log(`\n${failures.length} run(s) failed:\n${failures.map((f) => `- ${f.label}: ${f.error.split("\n")[0]}`).join("\n")}`)
    }
    const seconds = (performance.now() - startedAt) / 1000
    const file = yield* writeResults({
      date: new Date().toISOString(),
      machine: { node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length },
      options: { selection: words, quick, rounds },
      seconds,
      sections: reports.map((r) => ({
        provider: r.provider.name,
        counts: r.counts,
        subjects: r.provider.subjects.filter((subject) => r.subjects.includes(subject.name)).map(({ config, name, role }) => ({
          name,
          role,
          config
        })),
        medians: medians(r, lookup(results.filter((result) => result.provider === r.provider.name))),
        loadBefore: r.loadBefore,
        loadAfter: r.loadAfter,
        bars: r.verdicts.map(({ bar, verdict }) => ({ bar, ...verdict }))
      })),
      results,
      failures
    })
    yield* say(`done in ${seconds.toFixed(0)} s; results written to ${file}`)
  })).pipe(Command.withDescription("Conveyor next to the raw drivers and peer libraries, workloads W1-W3 (issue 7)"))

bench.pipe(
  Command.run({ version: "0.2.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
