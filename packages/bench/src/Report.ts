/** The printed report: one markdown section per provider, then a summary of every bar. */
import type { Verdict } from "./Bars.ts"
import type { Provider, RunKey } from "./Provider.ts"
import { format, type Lookup, metrics, metricsOf } from "./Results.ts"
import type { Counts } from "./Workloads.ts"

export interface Section {
  readonly provider: Provider
  readonly counts: Counts
  readonly subjects: ReadonlyArray<string>
  readonly runs: ReadonlyArray<RunKey>
  readonly loadBefore: ReadonlyArray<number>
  readonly loadAfter: ReadonlyArray<number>
  readonly verdicts: ReadonlyArray<{ readonly bar: string; readonly verdict: Verdict }>
}

const load = (averages: ReadonlyArray<number>) => averages.map((a) => a.toFixed(2)).join(" / ")

const ratioCell = (ours: number | undefined, theirs: number | undefined) =>
  ours === undefined || theirs === undefined ? "—" : `${(ours / theirs).toFixed(2)}×`

export const section = (s: Section, get: Lookup): string => {
  const others = s.subjects.filter((name) => name !== "conveyor")
  const lines = [
    `## ${s.provider.name}`,
    "",
    `Machine load (\`os.loadavg()\`, 1 / 5 / 15 min): ${load(s.loadBefore)} before, ${load(s.loadAfter)} after.`,
    "",
    `Counts: W1 ${s.counts.latencySamples} samples after ${s.counts.latencyWarmup} warm-up; W2 ${
      s.counts.drainMessages.toLocaleString("en-US")
    } messages after 1,000; W3 ${s.counts.chains} chains × ${s.counts.hops} hops, ${s.counts.chainConcurrency} handlers, after the same run once.`,
    "",
    ...s.provider.subjects.filter((subject) => s.subjects.includes(subject.name)).map((subject) =>
      `- **${subject.name}**: ${subject.config}`
    ),
    "",
    `| run | metric | ${s.subjects.join(" | ")} |${others.map((o) => ` conveyor ÷ ${o} |`).join("")}`,
    `|---|---|${s.subjects.map(() => "---:|").join("")}${others.map(() => "---:|").join("")}`
  ]
  for (const run of s.runs) {
    for (const metric of metricsOf(run)) {
      const { label, unit } = metrics[metric]
      const ours = get("conveyor", run, metric)
      const cells = s.subjects.map((name) => format(get(name, run, metric), unit))
      const ratios = others.map((o) => ratioCell(ours, get(o, run, metric)))
      lines.push(`| ${run} | ${label} (${unit}) | ${cells.join(" | ")} |${ratios.map((r) => ` ${r} |`).join("")}`)
    }
  }
  const base = get("conveyor", s.runs[0]!, "rssBaseMiB")
  lines.push(
    "",
    `Peak RSS: of the whole measuring process (\`process.resourceUsage().maxRSS\`); every run has a process of its own, ${
      base === undefined ? "" : `~${base.toFixed(0)} MiB once its modules are loaded, `
    }so peers and raw loops are measured the same way.`
  )
  if (s.verdicts.length > 0) {
    lines.push("", "Bars:", "")
    for (const { bar, verdict } of s.verdicts) {
      lines.push(`- ${verdict.pass ? "PASS" : "**FAIL**"} ${bar}: ${verdict.measured}`)
    }
  }
  return lines.join("\n")
}

export const summary = (sections: ReadonlyArray<Section>): string => {
  const rows = sections.flatMap((s) =>
    s.verdicts.map(({ bar, verdict }) => `| ${s.provider.name} | ${bar} | ${verdict.measured} | ${verdict.pass ? "PASS" : "FAIL"} |`)
  )
  const failed = sections.reduce((n, s) => n + s.verdicts.filter((v) => !v.verdict.pass).length, 0)
  return [
    "## Summary",
    "",
    "| provider | bar | measured | |",
    "|---|---|---:|---|",
    ...rows,
    "",
    `${rows.length - failed} of ${rows.length} bars pass.`
  ].join("\n")
}
