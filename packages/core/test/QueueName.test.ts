import { describe, expect, it } from "@effect/vitest"
import { QueueName } from "@conveyor/core"
import { Effect, Result } from "effect"

describe("QueueName", () => {
  it.each(["", "a".repeat(44), "a".repeat(48), "Orders", "a-b", "a;drop table x", "é", "1abc", "x'; drop table pgmq.meta; --", "\"x\"", "x.y"])(
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
  it.each(["a", "_x", "worker_billing_queue", "a".repeat(43), "q1_2"])("accepts %j", (name) => {
    expect(Result.isSuccess(QueueName.validate(name))).toBe(true)
  })

  it("checker answers what validate does, whatever it checked before", () => {
    const check = QueueName.checker()
    for (const name of ["orders", "orders", "Orders", "orders", "a;drop", "a;drop", "", "orders_dlq", "orders"]) {
      const result = QueueName.validate(name)
      const problem = check(name)
      expect(problem === undefined).toBe(Result.isSuccess(result))
      if (Result.isFailure(result)) expect(problem?.message).toBe(result.failure.message)
    }
  })

  it("refuses a name whose dead-letter queue would pass PGMQ's 47 characters, and says why", () => {
    for (const length of [44, 45, 46, 47]) {
      const result = QueueName.validate("q".repeat(length))
      expect(Result.isFailure(result)).toBe(true)
      if (Result.isFailure(result)) {
        expect(result.failure.message).toContain(`at most 43 characters (got ${length})`)
        expect(result.failure.message).toContain("dead-letter queue")
      }
      expect(() => QueueName.makeUnsafe("q".repeat(length))).toThrow(/dead-letter queue/)
    }
  })

  it("accepts 44–47 characters only for a dead-letter queue, which cannot be ensured itself", () => {
    const dlq = QueueName.makeUnsafe(`${"q".repeat(43)}_dlq`)
    expect(dlq.length).toBe(47)
    expect(Result.isFailure(QueueName.validate(`${"q".repeat(44)}_dlq`))).toBe(true)
    expect(() => QueueName.makeUnsafe(`${"q".repeat(44)}_dlq`)).toThrow(/at most 47 characters \(got 48\)/)
    const refused = Effect.runSync(Effect.flip(QueueName.ensurable(dlq)))
    expect(refused._tag).toBe("InvalidQueueName")
    expect(refused.message).toContain("cannot be ensured")
    expect(Effect.runSync(QueueName.ensurable(QueueName.makeUnsafe("q".repeat(43))))).toBe("q".repeat(43))
  })

  it("past 43 characters, takes the dead-letter queue of a valid name and nothing else", () => {
    const accepted = (name: string) => Result.isSuccess(QueueName.validate(name))
    expect(accepted("q".repeat(43))).toBe(true)
    expect(accepted(`${"q".repeat(43)}_dlq`)).toBe(true)
    expect(accepted("q".repeat(44))).toBe(false)
    expect(accepted(`${"q".repeat(44)}_dlq`)).toBe(false)
    expect(accepted(`${"q".repeat(40)}_DLQ`)).toBe(false)
    expect(accepted("Orders_dlq")).toBe(false)
    expect(accepted("_dlq")).toBe(true)
    expect(accepted("")).toBe(false)
  })

  it("the dead-letter queue of every valid name fits PGMQ's limit", () => {
    for (let length = 1; length <= QueueName.maxLength; length++) {
      const dlq = QueueName.deadLetter(QueueName.makeUnsafe("q".repeat(length)))
      expect(dlq).toBe(`${"q".repeat(length)}_dlq`)
      expect(dlq.length).toBeLessThanOrEqual(QueueName.pgmqMaxLength)
    }
    expect(QueueName.maxLength).toBe(43)
    expect(QueueName.pgmqMaxLength).toBe(47)
  })
})
