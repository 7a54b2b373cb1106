import * as Conveyor from "@conveyor/bench/Conveyor"
import type { Hop, Subject } from "@conveyor/bench/Pipe"
import { type Counts, measure } from "@conveyor/bench/Workloads"
import { InMemory } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

const counts: Counts = {
  latencySamples: 10,
  latencyWarmup: 2,
  drainMessages: 300,
  drainConcurrency: [4],
  chains: 5,
  hops: 4,
  chainConcurrency: 4,
  limitSeconds: 10
}

const memory = Conveyor.subject({ layer: InMemory.layer(), config: "test" })

/** Conveyor on memory, every message's hop recorded as its handler starts. */
const recording = () => {
  const seen: Array<Hop> = []
  const subject: Subject = {
    ...memory,
    connect: Effect.map(memory.connect, (connection) => ({
      open: (label) =>
        Effect.map(connection.open(label), (pipe) => ({
          ...pipe,
          consume: (concurrency, step, settled) =>
            pipe.consume(concurrency, (hop) => {
              seen.push(hop)
              return step(hop)
            }, settled)
        }))
    }))
  }
  return { seen, subject }
}

describe("Workloads", () => {
  it.live("W3 runs every hop of every chain once, in order per chain, after its warm-up", () =>
    Effect.gen(function*() {
      const { seen, subject } = recording()
      const result = yield* measure(subject, "w3", counts, counts.chainConcurrency)
      assert.strictEqual(result.workload, "w3")
      if (result.workload !== "w3") return
      assert.strictEqual(result.messages, counts.chains * counts.hops)
      // The warm-up ran every chain for min(5, hops) hops first; the measured run follows.
      const measured = seen.slice(counts.chains * Math.min(5, counts.hops))
      assert.strictEqual(measured.length, counts.chains * counts.hops)
      for (let chain = 0; chain < counts.chains; chain++) {
        assert.deepStrictEqual(measured.filter((hop) => hop.chain === chain).map((hop) => hop.hop), [0, 1, 2, 3])
      }
      assert.isTrue(result.msgPerSec > 0 && result.firstHopP50 >= 0 && result.hopP50 <= result.hopP99)
    }))

  it.live("W2 drains exactly the preloaded messages; W1 takes the asked-for samples", () =>
    Effect.gen(function*() {
      const { seen, subject } = recording()
      const drained = yield* measure(subject, "w2", counts, 4)
      assert.strictEqual(seen.length, Math.min(1_000, counts.drainMessages) + counts.drainMessages)
      assert.isTrue(drained.workload === "w2" && drained.msgPerSec > 0)
      const latency = yield* measure(memory, "w1", counts, 1)
      assert.isTrue(latency.workload === "w1" && latency.samples === counts.latencySamples && latency.p50 <= latency.p99)
    }))
})
