/**
 * In memory: the cost of Conveyor itself, with no broker in the way (no raw
 * counterpart). W2 with 10× the messages (it drains fast), batch 64, and W3.
 */
import { InMemory } from "@conveyor/core"
import * as Bars from "./Bars.ts"
import * as Conveyor from "./Conveyor.ts"
import type { Provider } from "./Provider.ts"

export const provider: Provider = {
  name: "memory",
  subjects: [
    Conveyor.subject({
      layer: InMemory.layer(),
      config: "InMemory.layer(); Consumer.run({ concurrency: handlers, batchSize: 64 })",
      runOptions: (concurrency) => ({ concurrency, batchSize: 64 })
    })
  ],
  counts: (counts) => ({ ...counts, drainMessages: counts.drainMessages * 10 }),
  runs: () => ["w2@16", "w3"],
  bars: [Bars.absolute("w2@16", "msgPerSec", "≥", 200_000)]
}
