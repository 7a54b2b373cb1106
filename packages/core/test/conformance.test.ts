import { InMemory } from "@conveyor/core"
import { Conformance } from "@conveyor/testkit"

Conformance.suite({ name: "memory", layer: InMemory.layer(), clock: "virtual" })
