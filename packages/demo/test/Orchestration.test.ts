import { Backend } from "@conveyor/backend"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Orchestration from "@conveyor/demo/src/Orchestration.ts"
import * as Workflow from "@conveyor/demo/src/Workflow.ts"

describe("the demo orchestration", () => {
  it.live("completes every workflow with all seven steps, each output what the DAG computes", () =>
    Effect.gen(function*() {
      const workflows = 60
      const report = yield* Orchestration.run({ workflows, concurrency: 12 })

      assert.strictEqual(report.outcomes.length, workflows)
      assert.deepStrictEqual(
        report.outcomes.map((outcome) => outcome.input).sort((a, b) => a - b),
        Array.from({ length: workflows }, (_, index) => index)
      )
      for (const outcome of report.outcomes) {
        assert.deepStrictEqual(Object.keys(outcome.outputs).sort(), [...Workflow.stepNames].sort())
        assert.deepStrictEqual(outcome.outputs, Workflow.expected(outcome.input))
        assert.isAbove(outcome.latencyMs, 0)
      }
      // One request, seven dispatches and seven results per workflow.
      assert.strictEqual(report.messages, workflows * 15)
    }).pipe(Effect.provide(Backend.layer("memory"))))
})
