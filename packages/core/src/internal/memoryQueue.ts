/**
 * One in-memory queue, synchronous and clock-agnostic: every method takes
 * `now` in milliseconds so the provider can drive it from Effect's Clock (and
 * tests from TestClock). Ready messages sit in a heap by id (FIFO), invisible
 * ones (delayed or claimed) in a heap by the time they become visible; stale
 * heap records are skipped lazily by comparing versions. A record holds its
 * entry, so neither a claim nor a settle looks the message up by id.
 */
import type { Headers } from "../Message.ts"
import { Heap } from "./heap.ts"

export interface Entry {
  readonly seq: number
  /** `seq` as the message id, made once rather than on every claim. */
  readonly id: string
  readonly body: string
  readonly headers: Headers
  readonly enqueuedAt: number
  visibleAt: number
  receiveCount: number
  /** The claim that currently owns the message; 0 when unclaimed or removed. */
  claim: number
  removed: boolean
  /** Bumped whenever the entry moves or leaves, so older heap records go stale. */
  version: number
}

interface ReadyRecord {
  readonly entry: Entry
  readonly version: number
}

interface WaitingRecord {
  readonly at: number
  readonly entry: Entry
  readonly version: number
}

/** Whether `claim` still owns `entry`: claimed by it (so not removed), not yet expired. */
export const owns = (entry: Entry, claim: number, now: number): boolean => entry.claim === claim && entry.visibleAt > now

export class MemoryQueue {
  /**
   * Every message in id order (ids only grow), removed ones included until they are half of
   * it: a settle marks its entry, and the live half is copied out now and then, which is
   * cheaper than deleting from a large Map one by one. A fetch by id searches it.
   */
  #log: Array<Entry> = []
  #removed = 0
  /** Subscribers of this queue, told when a message may have become visible. */
  readonly watchers = new Set<() => void>()
  readonly #ready = new Heap<ReadyRecord>((a, b) => a.entry.seq < b.entry.seq)
  readonly #waiting = new Heap<WaitingRecord>((a, b) =>
    a.at < b.at || (a.at === b.at && a.entry.seq < b.entry.seq)
  )

  #place(entry: Entry, now: number): void {
    const version = ++entry.version
    if (entry.visibleAt <= now) this.#ready.push({ entry, version })
    else this.#waiting.push({ at: entry.visibleAt, entry, version })
  }

  #current(record: ReadyRecord | WaitingRecord): Entry | undefined {
    return record.entry.version === record.version ? record.entry : undefined
  }

  /** Moves everything whose time has come from waiting to ready. */
  #promote(now: number): void {
    for (let top = this.#waiting.peek(); top !== undefined && top.at <= now; top = this.#waiting.peek()) {
      this.#waiting.pop()
      const entry = this.#current(top)
      if (entry !== undefined) this.#ready.push({ entry, version: entry.version })
    }
  }

  add(seq: number, body: string, headers: Headers, now: number, visibleAt: number): Entry {
    const entry: Entry = {
      seq,
      id: String(seq),
      body,
      headers,
      enqueuedAt: now,
      visibleAt,
      receiveCount: 0,
      claim: 0,
      removed: false,
      version: 0
    }
    this.#log.push(entry)
    this.#place(entry, now)
    return entry
  }

  #claimEntry(entry: Entry, claim: number, now: number, visibilityMs: number): Entry {
    entry.receiveCount++
    entry.claim = claim
    entry.visibleAt = now + visibilityMs
    this.#place(entry, now)
    return entry
  }

  /** Claims the oldest visible message, or nothing. */
  claimNext(claim: number, now: number, visibilityMs: number): Entry | undefined {
    this.#promote(now)
    for (let top = this.#ready.pop(); top !== undefined; top = this.#ready.pop()) {
      const entry = this.#current(top)
      if (entry !== undefined) return this.#claimEntry(entry, claim, now, visibilityMs)
    }
    return undefined
  }

  claimById(seq: number, claim: number, now: number, visibilityMs: number): Entry | undefined {
    const entry = this.#find(seq)
    return entry !== undefined && entry.visibleAt <= now ? this.#claimEntry(entry, claim, now, visibilityMs) : undefined
  }

  #find(seq: number): Entry | undefined {
    const log = this.#log
    let low = 0
    let high = log.length
    while (low < high) {
      const mid = (low + high) >> 1
      if (log[mid]!.seq < seq) low = mid + 1
      else high = mid
    }
    const entry = log[low]
    return entry !== undefined && entry.seq === seq && !entry.removed ? entry : undefined
  }

  remove(entry: Entry): void {
    entry.removed = true
    entry.claim = 0
    entry.version++
    if (++this.#removed >= 1024 && this.#removed * 2 >= this.#log.length) {
      this.#log = this.#log.filter((kept) => !kept.removed)
      this.#removed = 0
    }
  }

  /** How many messages the queue holds. */
  get size(): number {
    return this.#log.length - this.#removed
  }

  *values(): IterableIterator<Entry> {
    for (const entry of this.#log) if (!entry.removed) yield entry
  }

  release(entry: Entry, now: number, visibleAt: number): void {
    entry.claim = 0
    entry.visibleAt = visibleAt
    this.#place(entry, now)
  }

  extend(entry: Entry, now: number, visibleAt: number): void {
    entry.visibleAt = visibleAt
    this.#place(entry, now)
  }

  /** When the next invisible message becomes visible, if any. */
  nextVisibleAt(now: number): number | undefined {
    this.#promote(now)
    for (let top = this.#ready.peek(); top !== undefined; top = this.#ready.peek()) {
      if (this.#current(top) !== undefined) return now
      this.#ready.pop()
    }
    for (let top = this.#waiting.peek(); top !== undefined; top = this.#waiting.peek()) {
      if (this.#current(top) !== undefined) return top.at
      this.#waiting.pop()
    }
    return undefined
  }

  /** What `stats` reports, at `now`; `oldest` is the earliest enqueue time. */
  counts(now: number) {
    let visible = 0
    let inFlight = 0
    let oldest: number | undefined
    for (const entry of this.values()) {
      if (entry.visibleAt <= now) visible++
      else if (entry.claim !== 0) inFlight++
      oldest = oldest === undefined ? entry.enqueuedAt : Math.min(oldest, entry.enqueuedAt)
    }
    const depth = this.size
    return { depth, visible, inFlight, delayed: depth - visible - inFlight, oldest }
  }

  changed(): void {
    for (const watcher of this.watchers) watcher()
  }

  purge(): number {
    const count = this.size
    for (const entry of this.#log) {
      entry.removed = true
      entry.claim = 0
      entry.version++
    }
    this.#log = []
    this.#removed = 0
    this.#ready.clear()
    this.#waiting.clear()
    return count
  }
}
