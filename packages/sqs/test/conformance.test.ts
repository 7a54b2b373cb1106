import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

// Standard queues order on a best-effort basis only (FIFO queues would order per group).
// The latency cases run from latency.test.ts, in a vitest group of their own.
Conformance.suite({ name: "sqs (fauxqs)", layer: layer(), clock: "live", fifo: false, part: "shared" })
