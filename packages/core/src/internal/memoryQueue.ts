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
  readonly entries = new Map<number, Entry>()
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
      version: 0
    }
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

  remove(entry: Entry): void {
    this.entries.delete(entry.seq)
    entry.claim = 0
    entry.version++
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

  changed(): void {
    for (const watcher of this.watchers) watcher()
  }

  purge(): number {
    const count = this.entries.size
    for (const entry of this.entries.values()) {
      entry.claim = 0
      entry.version++
    }
    this.entries.clear()
    this.#ready.clear()
    this.#waiting.clear()
    return count
  }
}
