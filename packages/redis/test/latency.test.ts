/** The conformance cases that measure milliseconds, run with no other test file competing (project `redis-latency`, vitest.latency.config.ts). */
import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

Conformance.suite({ name: "redis", layer: layer(), clock: "live", part: "alone" })
