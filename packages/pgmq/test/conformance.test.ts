import { Conformance } from "@conveyor/testkit"
import { testLayer } from "./support.ts"

Conformance.suite({ name: "pgmq", layer: testLayer(), clock: "live" })
