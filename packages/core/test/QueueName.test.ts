import { describe, expect, it } from "@effect/vitest"
import { QueueName } from "@conveyor/core"
import { Result } from "effect"

describe("QueueName", () => {
  it.each(["", "a".repeat(48), "Orders", "a-b", "a;drop table x", "é", "1abc", "x'; drop table pgmq.meta; --", "\"x\"", "x.y"])(
    "refuses %j",
    (name) => {
      const result = QueueName.validate(name)
      expect(Result.isFailure(result)).toBe(true)
      if (Result.isFailure(result)) {
        expect(result.failure._tag).toBe("InvalidQueueName")
        expect(result.failure.message).toContain("Invalid queue name")
      }
    }
  )
  it.each(["a", "_x", "worker_billing_queue", "a".repeat(47), "q1_2"])("accepts %j", (name) => {
    expect(Result.isSuccess(QueueName.validate(name))).toBe(true)
  })
})
