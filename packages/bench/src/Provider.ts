/**
 * A provider's section of the bench: its subjects (Conveyor first, then the
 * raw ceiling, then any peers), which workloads it runs, and the bars its
 * results are held to. Adding a provider (Redis, SQS) is a module like
 * memory.ts exporting one (a `Conveyor.subject` over its layer and a raw
 * counterpart) and a line in Providers.ts.
 */
import type { Bar } from "./Bars.ts"
import type { Subject } from "./Pipe.ts"
import type { Counts } from "./Workloads.ts"

/** A workload run: `w1`, `w2@<handlers>` or `w3`. */
export type RunKey = "w1" | `w2@${number}` | "w3"

export interface Provider {
  readonly name: string
  readonly subjects: ReadonlyArray<Subject>
  readonly runs: (counts: Counts) => ReadonlyArray<RunKey>
  /** The provider's own counts, if they differ from the shared ones. */
  readonly counts?: (counts: Counts) => Counts
  readonly bars: ReadonlyArray<Bar>
}
