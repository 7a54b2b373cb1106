import { Payload, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"

const q = QueueName.makeUnsafe("payloads")

describe("Payload", () => {
  it.effect("accepts JSON values and refuses the rest with the path of the offence", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Payload.validate({ a: [1, "x", null, true, { b: -0.5 }] }), { a: [1, "x", null, true, { b: -0.5 }] })
      const cyclic: Record<string, unknown> = {}
      cyclic.me = cyclic
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ a: { b: 1n } }, "$.a.b"],
        [{ f: () => 1 }, "$.f"],
        [[1, undefined], "$[1]"],
        [{ n: Number.POSITIVE_INFINITY }, "$.n"],
        [cyclic, "$.me"],
        [{ when: new Date(0) }, "$.when"],
        [Symbol("s"), "$"]
      ]
      for (const [payload, path] of cases) {
        const error = yield* Effect.flip(Payload.validate(payload))
        assert.strictEqual(error._tag, "InvalidPayload")
        assert.strictEqual(error.path, path)
      }
    }))

  it.effect("shared references that are not cycles are fine", () =>
    Effect.gen(function*() {
      const shared = { x: 1 }
      assert.deepStrictEqual(yield* Payload.validate([shared, shared]), [{ x: 1 }, { x: 1 }])
    }))

  it.effect("counts size in UTF-8 bytes, not characters", () =>
    Effect.gen(function*() {
      const text = "é".repeat(6) // 12 bytes + 2 quotes
      assert.strictEqual(yield* Payload.encode(q, text, 14), JSON.stringify(text))
      const error = yield* Effect.flip(Payload.encode(q, text, 13))
      assert.strictEqual(error._tag, "MessageTooLarge")
      if (error._tag === "MessageTooLarge") assert.strictEqual(error.bytes, 14)
    }))

  it.effect("encodeResult answers what encode does: a text is counted once it could exceed the limit", () =>
    Effect.gen(function*() {
      // "😀€" as JSON: 5 UTF-16 units (limit 15 and up fit uncounted), 9 UTF-8 bytes.
      for (const maxBytes of [8, 9, 14, 15, 16]) {
        const result = Payload.encodeResult(q, "😀€", maxBytes)
        const effect = yield* Effect.result(Payload.encode(q, "😀€", maxBytes))
        assert.deepStrictEqual(result, effect)
        if (maxBytes < 9) {
          assert.isTrue(Result.isFailure(result))
          if (Result.isFailure(result) && result.failure._tag === "MessageTooLarge") assert.strictEqual(result.failure.bytes, 9)
        } else {
          assert.deepStrictEqual(result, Result.succeed(JSON.stringify("😀€")))
        }
      }
      assert.strictEqual(Result.isFailure(Payload.encodeResult(q, { n: Number.NaN }, 100)), true)
    }))
})
