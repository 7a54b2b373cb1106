import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

// The latency cases run from latency.test.ts, in a vitest group of their own.
Conformance.suite({ name: "redis", layer: layer(), clock: "live", part: "shared" })
