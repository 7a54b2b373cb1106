/**
 * `npm run bench`: runs the selected suites one after another (never at
 * once: they would compete for the same two cores), prints one markdown
 * table and writes the rows to bench-results/latest.json.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { mkdir, writeFile } from "node:fs/promises"
import os from "node:os"
import * as Memory from "./memory.ts"
import * as Pgmq from "./pgmq.ts"
import * as RabbitMq from "./rabbitmq.ts"
import type { Row } from "./Report.ts"

const suites = {
  memory: Memory.run,
  pgmq: Pgmq.run,
  rabbitmq: RabbitMq.run
} satisfies Record<string, Effect.Effect<ReadonlyArray<Row>, unknown>>

type SuiteName = keyof typeof suites

const suiteNames = Object.keys(suites) as ReadonlyArray<SuiteName>

const resultsDir = new URL("../../../bench-results/", import.meta.url)

const formatValue = (value: number, unit: string): string => {
  if (unit === "ms") return `${value.toFixed(value < 10 ? 3 : 1)} ms`
  return `${Math.round(value).toLocaleString("en-US")} ${unit}`
}

const formatRatio = (row: Row): string =>
  row.raw === undefined ? "—" : `${(row.conveyor / row.raw).toFixed(2)}× (${row.higherIsBetter ? "higher" : "lower"} is better)`

const table = (rows: ReadonlyArray<Row>): string =>
  [
    "| suite | metric | conveyor | raw | ratio | bar |",
    "|---|---|---:|---:|---:|---|",
    ...rows.map((row) =>
      `| ${row.suite} | ${row.metric} | ${formatValue(row.conveyor, row.unit)} | ${
        row.raw === undefined ? "—" : formatValue(row.raw, row.unit)
      } | ${formatRatio(row)} | ${row.bar ?? "—"} |`
    )
  ].join("\n")

const progress = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

const runSuite = (name: SuiteName) =>
  Effect.gen(function*() {
    yield* progress(`bench: ${name} …`)
    const startedAt = performance.now()
    const rows = yield* suites[name]
    yield* progress(`bench: ${name} done in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    return rows
  })

const writeResults = (rows: ReadonlyArray<Row>) =>
  Effect.promise(async () => {
    await mkdir(resultsDir, { recursive: true })
    const file = new URL("latest.json", resultsDir)
    const machine = { node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length }
    await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2)}\n`)
    return file.pathname
  })

const bench = Command.make("bench", {
  only: Flag.Literals("only", suiteNames).pipe(
    Flag.withDescription("Run only this suite (repeatable); default: every suite"),
    Flag.atLeast(0)
  )
}, ({ only }) =>
  Effect.gen(function*() {
    const selected = only.length === 0 ? suiteNames : suiteNames.filter((name) => only.includes(name))
    const rows = (yield* Effect.forEach(selected, runSuite)).flat()
    yield* Console.log(table(rows))
    yield* progress(`bench: results written to ${yield* writeResults(rows)}`)
  })).pipe(Command.withDescription("Benchmark Conveyor against the raw drivers (DESIGN §9)"))

bench.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
