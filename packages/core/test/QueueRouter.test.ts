import { QueueRouter } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

describe("QueueRouter", () => {
  const router = QueueRouter.make()

  it.effect("names queues the Tasker way and classifies them back", () =>
    Effect.gen(function*() {
      const billing = yield* router.worker("billing")
      assert.strictEqual(billing, "worker_billing_queue")
      assert.deepStrictEqual(router.classify(billing), QueueRouter.QueueKind.Worker({ namespace: "billing" }))
      const events = yield* router.domainEvents("billing")
      assert.strictEqual(events, "billing_domain_events")
      assert.deepStrictEqual(router.classify(events), QueueRouter.QueueKind.DomainEvents({ namespace: "billing" }))
      assert.strictEqual(router.classify(router.stepResults)._tag, "StepResults")
      assert.strictEqual(router.classify(router.taskRequests)._tag, "TaskRequests")
      assert.strictEqual(router.classify(router.taskFinalizations)._tag, "TaskFinalizations")
      assert.deepStrictEqual(
        router.classify("worker_billing_queue_dlq"),
        QueueRouter.QueueKind.DeadLetter({ of: QueueRouter.QueueKind.Worker({ namespace: "billing" }) })
      )
      assert.strictEqual(router.classify("payments")._tag, "Other")
      assert.strictEqual(router.classify("worker__queue")._tag, "Other")
    }))

  it.effect("a namespace that would make an invalid queue name is a typed error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(router.worker("Billing; drop"))
      assert.strictEqual(error._tag, "InvalidQueueName")
      const tooLong = yield* Effect.flip(router.worker("n".repeat(40)))
      assert.strictEqual(tooLong._tag, "InvalidQueueName")
    }))

  it.effect("honours a configured prefix", () =>
    Effect.gen(function*() {
      const staging = QueueRouter.make({ prefix: "staging_" })
      assert.strictEqual(yield* staging.worker("fulfilment"), "staging_worker_fulfilment_queue")
      assert.strictEqual(staging.stepResults, "staging_orchestration_step_results")
      assert.deepStrictEqual(staging.classify("staging_worker_fulfilment_queue"), QueueRouter.QueueKind.Worker({ namespace: "fulfilment" }))
      assert.strictEqual(staging.classify("worker_fulfilment_queue")._tag, "Other")
    }))
})
