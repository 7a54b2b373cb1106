/** The demo's closing report: what ran, how fast, and which delivery path carried it. */
import type { Report } from "./Orchestration.ts"
import * as Workflow from "./Workflow.ts"

export interface Summary {
  readonly backend: string
  readonly requested: number
  readonly concurrency: number
  readonly report: Report
  readonly receivedByPush: number
  readonly receivedByPoll: number
}

/** Nearest-rank percentile of an ascending array. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`

const rate = (count: number, elapsedMs: number) => `${Math.round((count / elapsedMs) * 1000).toLocaleString("en-US")}/s`

export const render = (summary: Summary): string => {
  const { report } = summary
  // A workflow's outcome exists only once all of its steps have reported.
  const complete = report.outcomes.length
  const latencies = report.outcomes.map((outcome) => outcome.latencyMs).sort((a, b) => a - b)
  const rows: ReadonlyArray<readonly [string, string]> = [
    ["backend", summary.backend],
    ["workflows done", `${complete} / ${summary.requested} (${Workflow.steps.length} steps each, ${summary.concurrency} in flight)`],
    ["elapsed", `${(report.elapsedMs / 1000).toFixed(2)} s`],
    ["workflows/s", rate(complete, report.elapsedMs)],
    ["messages", `${report.messages.toLocaleString("en-US")} (${rate(report.messages, report.elapsedMs)})`],
    ["completion latency p50", ms(percentile(latencies, 50))],
    ["completion latency p95", ms(percentile(latencies, 95))],
    ["completion latency p99", ms(percentile(latencies, 99))],
    ["received by push", summary.receivedByPush.toLocaleString("en-US")],
    ["received by poll", summary.receivedByPoll.toLocaleString("en-US")]
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  const valueWidth = Math.max(...rows.map(([, value]) => value.length))
  const rule = `${"-".repeat(width)}-+-${"-".repeat(valueWidth)}`
  return [rule, ...rows.map(([label, value]) => `${label.padEnd(width)} | ${value}`), rule].join("\n")
}
