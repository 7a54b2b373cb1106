/**
 * Which runs a selection asks for, in the order they happen: per provider,
 * per workload run, round after round, the subjects' order rotated each round.
 * A selection word is a provider (`pgmq`), a workload (`w1`, `w2`, `w3`) or
 * the start of a subject's name (`raw`, `pg-boss`); words of one kind are
 * alternatives, kinds narrow each other; Conveyor always runs.
 */
import { Effect, Schema } from "effect"
import type { Provider } from "./Provider.ts"
import { type ProviderName, providerNames } from "./Providers.ts"
import { countsFor, type Spec } from "./Run.ts"
import { workloadNames } from "./Workloads.ts"

export class UnknownSelection extends Schema.TaggedError<UnknownSelection>()("UnknownSelection", {
  word: Schema.String,
  message: Schema.String
}) {}

export interface Planned {
  readonly spec: Spec
  readonly label: string
}

export interface Selection {
  readonly providers: ReadonlyArray<ProviderName>
  readonly workloads: ReadonlyArray<string>
  readonly subjects: ReadonlyArray<string>
}

export const select = (words: ReadonlyArray<string>, loaded: ReadonlyArray<Provider>) =>
  Effect.gen(function*() {
    const subjectNames = [...new Set(loaded.flatMap((p) => p.subjects.map((s) => s.name)))]
    const selection = { providers: [] as Array<ProviderName>, workloads: [] as Array<string>, subjects: [] as Array<string> }
    for (const word of words) {
      if ((providerNames as ReadonlyArray<string>).includes(word)) selection.providers.push(word as ProviderName)
      else if ((workloadNames as ReadonlyArray<string>).includes(word)) selection.workloads.push(word)
      else if (subjectNames.some((name) => name.startsWith(word))) selection.subjects.push(word)
      else {
        const known = [...providerNames, ...workloadNames, ...subjectNames].join(", ")
        return yield* new UnknownSelection({ word, message: `Unknown selection "${word}": expected one of ${known}` })
      }
    }
    return selection satisfies Selection
  })

export const plan = (provider: Provider, name: ProviderName, selection: Selection, quick: boolean, rounds: number) => {
  const counts = countsFor(quick, provider.counts)
  const runs = provider.runs(counts).filter((run) =>
    selection.workloads.length === 0 || selection.workloads.includes(run.split("@")[0]!)
  )
  const subjects = provider.subjects.filter((s) =>
    s.name === "conveyor" || selection.subjects.length === 0 || selection.subjects.some((w) => s.name.startsWith(w))
  )
  const planned: Array<Planned> = []
  for (const run of runs) {
    for (let round = 0; round < rounds; round++) {
      // Rotating the order round by round: no subject always runs first, or always right after the same one.
      const order = subjects.map((_, i) => subjects[(i + round) % subjects.length]!)
      for (const subject of order) {
        if (round >= (subject.maxRounds ?? rounds)) continue
        planned.push({
          spec: { provider: name, subject: subject.name, run, round, quick },
          label: `${name} ${run} ${subject.name} (round ${round + 1}/${Math.min(rounds, subject.maxRounds ?? rounds)})`
        })
      }
    }
  }
  return { runs, subjects: subjects.map((s) => s.name), planned }
}

