import { assert, describe, it } from "@effect/vitest"
import { Heap } from "../src/internal/heap.js"

/** A deterministic pseudo-random sequence, so a failure reproduces. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

describe("Heap", () => {
  it("pops in order whatever the mix of in-order and out-of-order pushes", () => {
    const next = random(7)
    const heap = new Heap<number>((a, b) => a < b)
    const reference: Array<number> = []
    let rising = 0
    for (let step = 0; step < 20_000; step++) {
      const r = next()
      if (r < 0.45) {
        // Mostly in order (the run), sometimes behind it (the binary heap), with ties.
        const value = r < 0.35 ? (rising += Math.floor(next() * 3)) : Math.floor(next() * rising)
        heap.push(value)
        reference.push(value)
      } else if (r < 0.9) {
        reference.sort((a, b) => a - b)
        assert.strictEqual(heap.peek(), reference[0])
        assert.strictEqual(heap.pop(), reference.shift())
      }
      assert.strictEqual(heap.size, reference.length)
      if (r > 0.9995) {
        heap.clear()
        reference.length = 0
      }
    }
    reference.sort((a, b) => a - b)
    while (reference.length > 0) assert.strictEqual(heap.pop(), reference.shift())
    assert.strictEqual(heap.pop(), undefined)
    assert.strictEqual(heap.peek(), undefined)
  })

  it("keeps a long run in order across the compaction of its popped head", () => {
    const heap = new Heap<number>((a, b) => a < b)
    for (let i = 0; i < 5_000; i++) heap.push(i)
    for (let i = 0; i < 3_000; i++) assert.strictEqual(heap.pop(), i)
    for (let i = 5_000; i < 6_000; i++) heap.push(i)
    heap.push(2_999.5)
    assert.strictEqual(heap.pop(), 2_999.5)
    for (let i = 3_000; i < 6_000; i++) assert.strictEqual(heap.pop(), i)
    assert.strictEqual(heap.size, 0)
  })
})
