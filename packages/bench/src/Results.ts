/**
 * What a measuring process reports, and the medians over rounds that the
 * report and the bars read.
 */
import type { RunKey } from "./Provider.ts"
import { median } from "./Stats.ts"
import type { Measurement } from "./Workloads.ts"

export interface Result {
  readonly provider: string
  readonly subject: string
  readonly run: RunKey
  readonly round: number
  readonly measurement: Measurement
  /** Peak resident set of the measuring process (`process.resourceUsage().maxRSS`), MiB. */
  readonly rssPeakMiB: number
  /** Its resident set once the modules were loaded, before connecting, MiB. */
  readonly rssBaseMiB: number
  readonly seconds: number
}

export const metrics = {
  p50: { label: "p50", unit: "ms", higherIsBetter: false },
  p99: { label: "p99", unit: "ms", higherIsBetter: false },
  msgPerSec: { label: "msg/s", unit: "msg/s", higherIsBetter: true },
  hopP50: { label: "hop p50", unit: "ms", higherIsBetter: false },
  firstHopP50: { label: "first-hop p50", unit: "ms", higherIsBetter: false },
  rssPeakMiB: { label: "peak RSS", unit: "MiB", higherIsBetter: false },
  rssBaseMiB: { label: "RSS at start", unit: "MiB", higherIsBetter: false }
} as const

export type Metric = keyof typeof metrics

/** The metrics each kind of run reports, in print order. */
export const metricsOf = (run: RunKey): ReadonlyArray<Metric> =>
  run === "w1" ? ["p50", "p99"] : run === "w3" ? ["msgPerSec", "hopP50", "firstHopP50", "rssPeakMiB"] : ["msgPerSec", "rssPeakMiB"]

export const valueOf = (result: Result, metric: Metric): number | undefined => {
  if (metric === "rssPeakMiB") return result.rssPeakMiB
  if (metric === "rssBaseMiB") return result.rssBaseMiB
  const m = result.measurement as Partial<Record<Metric, number>>
  return m[metric]
}

/** The median of `metric` over the rounds of `subject`'s `run`, if it ran. */
export type Lookup = (subject: string, run: RunKey, metric: Metric) => number | undefined

export const lookup = (results: ReadonlyArray<Result>): Lookup => (subject, run, metric) => {
  const values = results
    .filter((r) => r.subject === subject && r.run === run)
    .map((r) => valueOf(r, metric))
    .filter((v): v is number => v !== undefined)
  return values.length === 0 ? undefined : median(values)
}

export const format = (value: number | undefined, unit: string): string => {
  if (value === undefined) return "—"
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(0)
  if (unit === "MiB") return value.toFixed(0)
  return value >= 10_000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0)
}
