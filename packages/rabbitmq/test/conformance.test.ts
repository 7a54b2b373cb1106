import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

Conformance.suite({ name: "rabbitmq (classic)", layer: layer(), clock: "live" })
Conformance.suite({ name: "rabbitmq (quorum)", layer: layer({ queueKind: "quorum" }), clock: "live" })
