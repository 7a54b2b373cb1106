import { Conformance } from "@conveyor/testkit"
import { layer } from "./support.ts"

Conformance.suite({ name: "redis", layer: layer(), clock: "live" })
