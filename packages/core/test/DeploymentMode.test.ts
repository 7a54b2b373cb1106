import { DeploymentMode, InMemory, type Messaging } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"

const caps = (overrides: Partial<Messaging.Capabilities>): Messaging.Capabilities => ({ ...InMemory.capabilities, ...overrides })

describe("DeploymentMode.effective", () => {
  it("decides from capabilities, never from a provider's name", () => {
    const pushNeedsBackup = caps({ push: "signal", requiresFallbackPolling: true })
    const pushReliable = caps({ push: "message", requiresFallbackPolling: false })
    const noPush = caps({ push: "none", requiresFallbackPolling: false })
    assert.strictEqual(DeploymentMode.effective("Hybrid", pushNeedsBackup), "Hybrid")
    assert.strictEqual(DeploymentMode.effective("Hybrid", pushReliable), "EventDrivenOnly")
    assert.strictEqual(DeploymentMode.effective("Hybrid", noPush), "PollingOnly")
    assert.strictEqual(DeploymentMode.effective("EventDrivenOnly", pushNeedsBackup), "EventDrivenOnly")
    assert.strictEqual(DeploymentMode.effective("EventDrivenOnly", noPush), "PollingOnly")
    for (const c of [pushNeedsBackup, pushReliable, noPush]) {
      assert.strictEqual(DeploymentMode.effective("PollingOnly", c), "PollingOnly")
    }
  })
})
