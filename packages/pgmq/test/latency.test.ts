/** The conformance cases that measure milliseconds, run with no other test file competing (project `pgmq-latency`, vitest.latency.config.ts). */
import { Conformance } from "@conveyor/testkit"
import { testLayer } from "./support.ts"

Conformance.suite({ name: "pgmq", layer: testLayer(), clock: "live", part: "alone" })
