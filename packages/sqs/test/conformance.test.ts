import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

// Standard queues order on a best-effort basis only (FIFO queues would order per group).
Conformance.suite({ name: "sqs (fauxqs)", layer: layer(), clock: "live", fifo: false })
