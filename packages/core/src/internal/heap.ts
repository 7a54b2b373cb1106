/**
 * A binary min-heap. The in-memory provider keeps its ready and waiting sets
 * in heaps so that a claim costs O(log n) however deep the queue is.
 */
export class Heap<A> {
  readonly #items: Array<A> = []
  readonly #less: (a: A, b: A) => boolean

  constructor(less: (a: A, b: A) => boolean) {
    this.#less = less
  }

  get size(): number {
    return this.#items.length
  }

  peek(): A | undefined {
    return this.#items[0]
  }

  push(item: A): void {
    const items = this.#items
    items.push(item)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.#less(items[i]!, items[parent]!)) break
      ;[items[i], items[parent]] = [items[parent]!, items[i]!]
      i = parent
    }
  }

  pop(): A | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    if (items.length > 0 && last !== undefined) {
      items[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let min = i
        if (l < items.length && this.#less(items[l]!, items[min]!)) min = l
        if (r < items.length && this.#less(items[r]!, items[min]!)) min = r
        if (min === i) break
        ;[items[i], items[min]] = [items[min]!, items[i]!]
        i = min
      }
    }
    return top
  }

  clear(): void {
    this.#items.length = 0
  }
}
