/** The conformance cases that measure milliseconds, run with no other test file competing (project `sqs-latency`, vitest.latency.config.ts). */
import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

Conformance.suite({ name: "sqs (fauxqs)", layer: layer(), clock: "live", fifo: false, part: "alone" })
