/**
 * The bars of issue 7, each checked against the medians of one run of the
 * bench. A bar whose inputs were not measured (a subset run) is left out.
 */
import type { RunKey } from "./Provider.ts"
import { format, type Lookup, type Metric, metrics } from "./Results.ts"

export interface Verdict {
  readonly measured: string
  readonly pass: boolean
}

export interface Bar {
  readonly text: string
  readonly evaluate: (get: Lookup) => Verdict | undefined
}

const compare = (value: number, op: "≥" | "≤", bound: number) => op === "≥" ? value >= bound : value <= bound

/** Conveyor's `metric` ÷ `other`'s, held to `op bound`. */
export const ratio = (run: RunKey, metric: Metric, other: string, op: "≥" | "≤", bound: number): Bar => ({
  text: `${run} ${metrics[metric].label} ${op} ${bound}× ${other}`,
  evaluate: (get) => {
    const ours = get("conveyor", run, metric)
    const theirs = get(other, run, metric)
    if (ours === undefined || theirs === undefined) return undefined
    const r = ours / theirs
    return { measured: `${r.toFixed(2)}×`, pass: compare(r, op, bound) }
  }
})

/** Conveyor's `metric` against a fixed bound. */
export const absolute = (run: RunKey, metric: Metric, op: "≥" | "≤", bound: number): Bar => {
  const { label, unit } = metrics[metric]
  return {
    text: `${run} ${label} ${op} ${format(bound, unit)} ${unit}`,
    evaluate: (get) => {
      const ours = get("conveyor", run, metric)
      return ours === undefined ? undefined : { measured: `${format(ours, unit)} ${unit}`, pass: compare(ours, op, bound) }
    }
  }
}

/** Conveyor's `metric` in run `a` at least as good as in run `b` (more handlers never slower). */
export const noDropOff = (a: RunKey, b: RunKey, metric: Metric): Bar => ({
  text: `${a} ${metrics[metric].label} ≥ ${b}`,
  evaluate: (get) => {
    const x = get("conveyor", a, metric)
    const y = get("conveyor", b, metric)
    return x === undefined || y === undefined ? undefined : { measured: `${(x / y).toFixed(2)}×`, pass: x >= y }
  }
})

/** Conveyor better than `peer` on `metric` of `run`. */
export const ahead = (peer: string, run: RunKey, metric: Metric): Bar => ({
  text: `${run} ${metrics[metric].label} ahead of ${peer}`,
  evaluate: (get) => {
    const ours = get("conveyor", run, metric)
    const theirs = get(peer, run, metric)
    if (ours === undefined || theirs === undefined) return undefined
    return {
      measured: `${(ours / theirs).toFixed(2)}×`,
      pass: metrics[metric].higherIsBetter ? ours > theirs : ours < theirs
    }
  }
})
