import { Conformance } from "@conveyor/testkit"
import { testLayer } from "./support.ts"

// The latency cases run from latency.test.ts, in a vitest group of their own.
Conformance.suite({ name: "pgmq", layer: testLayer(), clock: "live", part: "shared" })
