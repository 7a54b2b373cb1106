import { Messaging } from "@conveyor/core"
import { assert } from "@effect/vitest"
import { Effect } from "effect"
import * as BadInput from "../BadInput.ts"
import type { Context } from "../Conformance.ts"
import { freshQueue } from "../Harness.ts"

const long = { max: 10, visibilityTimeout: "30 seconds" } as const

export const badInput = ({ test }: Context) => {
  test("queue names cast past validation are InvalidQueueName in every operation, and in a real receipt: its claim stays held", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      for (const name of BadInput.hostileNames) {
        for (const [operation, attempt] of BadInput.everyOperation(m, name)) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error._tag, "InvalidQueueName", `${operation}(${JSON.stringify(name)}): ${error.message}`)
        }
      }
      const q = yield* freshQueue
      const id = yield* m.send(q, "held")
      const [message] = yield* m.receive(q, long)
      assert.strictEqual(message?.id, id)
      for (const name of BadInput.hostileNames) {
        for (const [operation, attempt] of BadInput.everySettlement(m, message!.receipt, name)) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error._tag, "InvalidQueueName", `${operation} of a receipt naming ${JSON.stringify(name)}: ${error.message}`)
        }
      }
      assert.deepStrictEqual(yield* m.receive(q, long), [], "the message is still claimed: invisible")
      yield* m.ack(message!.receipt)
      assert.deepStrictEqual(yield* m.receive(q, long), [], "the true receipt acked it")
    }))
}
