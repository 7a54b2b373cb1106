import * as Bars from "@conveyor/bench/Bars"
import type { Lookup } from "@conveyor/bench/Results"
import { assert, describe, it } from "@effect/vitest"

/** conveyor: W3 600 msg/s, hop 4 ms; raw: 1000 msg/s, hop 3 ms; peer: 500 msg/s, hop 5 ms. */
const get: Lookup = (subject, run, metric) => {
  const table: Record<string, Record<string, number>> = {
    conveyor: { "w3 msgPerSec": 600, "w3 hopP50": 4, "w2@16 msgPerSec": 900, "w2@64 msgPerSec": 800 },
    raw: { "w3 msgPerSec": 1000, "w3 hopP50": 3 },
    peer: { "w3 msgPerSec": 500, "w3 hopP50": 5 }
  }
  return table[subject]?.[`${run} ${metric}`]
}

describe("Bars", () => {
  it("ratios compare conveyor with the other side, in the bar's direction", () => {
    assert.deepStrictEqual(Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.5).evaluate(get), { measured: "0.60×", pass: true })
    assert.deepStrictEqual(Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.7).evaluate(get)?.pass, false)
    assert.deepStrictEqual(Bars.ratio("w3", "hopP50", "raw", "≤", 1.2).evaluate(get)?.pass, false)
    assert.deepStrictEqual(Bars.ratio("w3", "hopP50", "raw", "≤", 2).evaluate(get)?.pass, true)
  })

  it("ahead means more throughput but less latency", () => {
    assert.strictEqual(Bars.ahead("peer", "w3", "msgPerSec").evaluate(get)?.pass, true)
    assert.strictEqual(Bars.ahead("peer", "w3", "hopP50").evaluate(get)?.pass, true)
    assert.strictEqual(Bars.ahead("raw", "w3", "hopP50").evaluate(get)?.pass, false)
  })

  it("more handlers may not be slower; a bar without its numbers is left out", () => {
    assert.strictEqual(Bars.noDropOff("w2@64", "w2@16", "msgPerSec").evaluate(get)?.pass, false)
    assert.strictEqual(Bars.ratio("w1", "p50", "raw", "≤", 1.3).evaluate(get), undefined)
    assert.strictEqual(Bars.absolute("w3", "msgPerSec", "≥", 500).evaluate(get)?.pass, true)
  })
})
