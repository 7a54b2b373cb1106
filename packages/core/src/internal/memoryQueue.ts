/**
 * One in-memory queue, synchronous and clock-agnostic: every method takes
 * `now` in milliseconds so the provider can drive it from Effect's Clock (and
 * tests from TestClock). Ready messages sit in a heap by id (FIFO), invisible
 * ones (delayed or claimed) in a heap by the time they become visible; stale
 * heap records are skipped lazily by comparing versions.
 */
import type { Headers } from "../Message.ts"
import { Heap } from "./heap.ts"

export interface Entry {
  readonly seq: number
  readonly body: string
  readonly headers: Headers
  readonly enqueuedAt: number
  visibleAt: number
  receiveCount: number
  /** The claim that currently owns the message; 0 when unclaimed. */
  claim: number
  version: number
}

interface ReadyRecord {
  readonly seq: number
  readonly version: number
}

interface WaitingRecord {
  readonly at: number
  readonly seq: number
  readonly version: number
}

export class MemoryQueue {
  readonly entries = new Map<number, Entry>()
  /** Subscribers of this queue, told when a message may have become visible. */
  readonly watchers = new Set<() => void>()
  readonly #ready = new Heap<ReadyRecord>((a, b) => a.seq < b.seq)
  readonly #waiting = new Heap<WaitingRecord>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq))

  #place(entry: Entry, now: number): void {
    entry.version++
    if (entry.visibleAt <= now) this.#ready.push({ seq: entry.seq, version: entry.version })
    else this.#waiting.push({ at: entry.visibleAt, seq: entry.seq, version: entry.version })
  }

  #current(record: ReadyRecord | WaitingRecord): Entry | undefined {
    const entry = this.entries.get(record.seq)
    return entry !== undefined && entry.version === record.version ? entry : undefined
  }

  /** Moves everything whose time has come from waiting to ready. */
  #promote(now: number): void {
    for (let top = this.#waiting.peek(); top !== undefined && top.at <= now; top = this.#waiting.peek()) {
      this.#waiting.pop()
      const entry = this.#current(top)
      if (entry !== undefined) this.#ready.push({ seq: entry.seq, version: entry.version })
    }
  }

  add(seq: number, body: string, headers: Headers, now: number, visibleAt: number): Entry {
    const entry: Entry = { seq, body, headers, enqueuedAt: now, visibleAt, receiveCount: 0, claim: 0, version: 0 }
    this.entries.set(seq, entry)
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
    const entry = this.entries.get(seq)
    return entry !== undefined && entry.visibleAt <= now ? this.#claimEntry(entry, claim, now, visibilityMs) : undefined
  }

  /** The entry a claim still owns: present, claimed by it, not yet expired. */
  owned(seq: number, claim: number, now: number): Entry | undefined {
    const entry = this.entries.get(seq)
    return entry !== undefined && entry.claim === claim && entry.visibleAt > now ? entry : undefined
  }

  remove(seq: number): void {
    this.entries.delete(seq)
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
    for (const entry of this.entries.values()) {
      if (entry.visibleAt <= now) visible++
      else if (entry.claim !== 0) inFlight++
      oldest = oldest === undefined ? entry.enqueuedAt : Math.min(oldest, entry.enqueuedAt)
    }
    const depth = this.entries.size
    return { depth, visible, inFlight, delayed: depth - visible - inFlight, oldest }
  }

  changed(): void {
    for (const watcher of this.watchers) watcher()
  }

  purge(): number {
    const count = this.entries.size
    this.entries.clear()
    this.#ready.clear()
    this.#waiting.clear()
    return count
  }
}
