/**
 * A min-priority queue for the in-memory provider's ready and waiting sets,
 * so that a claim costs O(log n) at worst however deep the queue is, and O(1)
 * in the common case: items pushed in order (new messages by id, claims with
 * one visibility timeout) append to a sorted run; only an item that sorts
 * before the run's last goes to a binary heap. `peek` and `pop` take the
 * lesser of the two heads.
 */
export class Heap<A> {
  readonly #less: (a: A, b: A) => boolean
  /** Sorted; `#head` is the first live index (popping does not shift the array). */
  #run: Array<A> = []
  #head = 0
  readonly #heap: Array<A> = []

  constructor(less: (a: A, b: A) => boolean) {
    this.#less = less
  }

  get size(): number {
    return this.#run.length - this.#head + this.#heap.length
  }

  peek(): A | undefined {
    const run = this.#run[this.#head]
    const heap = this.#heap[0]
    if (run === undefined) return heap
    return heap !== undefined && this.#less(heap, run) ? heap : run
  }

  push(item: A): void {
    const run = this.#run
    if (run.length === this.#head || !this.#less(item, run[run.length - 1]!)) run.push(item)
    else this.#heapPush(item)
  }

  pop(): A | undefined {
    const run = this.#run[this.#head]
    const heap = this.#heap[0]
    if (run === undefined) return heap === undefined ? undefined : this.#heapPop()
    if (heap !== undefined && this.#less(heap, run)) return this.#heapPop()
    this.#run[this.#head++] = undefined as A
    if (this.#head === this.#run.length) {
      this.#run.length = 0
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#run.length) {
      // Amortised O(1): at most the live half is copied, once per as many pops.
      this.#run = this.#run.slice(this.#head)
      this.#head = 0
    }
    return run
  }

  clear(): void {
    this.#run = []
    this.#head = 0
    this.#heap.length = 0
  }

  #heapPush(item: A): void {
    const items = this.#heap
    let i = items.length
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const above = items[parent]!
      if (!this.#less(item, above)) break
      items[i] = above
      i = parent
    }
    items[i] = item
  }

  #heapPop(): A {
    const items = this.#heap
    const top = items[0]!
    const last = items.pop()!
    const n = items.length
    if (n === 0) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const child = r < n && this.#less(items[r]!, items[l]!) ? r : l
      if (!this.#less(items[child]!, last)) break
      items[i] = items[child]!
      i = child
    }
    items[i] = last
    return top
  }
}
