/** The conformance cases that measure milliseconds, run with no other test file competing (project `rabbitmq-latency`, vitest.latency.config.ts). */
import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

Conformance.suite({ name: "rabbitmq (classic)", layer: layer(), clock: "live", part: "alone" })
Conformance.suite({ name: "rabbitmq (quorum)", layer: layer({ queueKind: "quorum" }), clock: "live", part: "alone" })
