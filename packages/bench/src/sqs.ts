/**
 * SQS: Conveyor's provider next to the raw AWS SDK long-poll loop, each
 * against a fauxqs emulator of its own started in the measuring process on
 * loopback (sqsRaw.ts). The emulator, in the same process as the subject,
 * is the bottleneck for both (hundreds to a few thousand msg/s), so SQS runs
 * one round of smaller counts — W1 a quarter of the samples, W2 a twentieth
 * of the messages, W3 40 chains × 15 hops — to keep the full run within its
 * budget (~1 min for this section).
 */
import { Sqs } from "@conveyor/sqs"
import { Effect, Layer, Redacted } from "effect"
import * as Bars from "./Bars.ts"
import * as Conveyor from "./Conveyor.ts"
import type { Provider } from "./Provider.ts"
import * as Raw from "./sqsRaw.ts"

const layer = Layer.unwrap(Effect.map(Raw.emulator, (endpoint) =>
  Sqs.layer({
    endpoint,
    region: Raw.region,
    credentials: { accessKeyId: Raw.credentials.accessKeyId, secretAccessKey: Redacted.make(Raw.credentials.secretAccessKey) }
  }))).pipe(Layer.orDie)

export const provider: Provider = {
  name: "sqs",
  subjects: [
    {
      ...Conveyor.subject({
        layer,
        config: "Sqs.layer (defaults: long polls of 20 s); Consumer.run({ concurrency: handlers, batchSize: handlers }), Hybrid",
        runOptions: (concurrency) => ({ concurrency, batchSize: concurrency })
      }),
      maxRounds: 1
    },
    { ...Raw.subject, maxRounds: 1 }
  ],
  counts: (counts) => ({
    ...counts,
    latencySamples: Math.round(counts.latencySamples / 4),
    latencyWarmup: Math.round(counts.latencyWarmup / 4),
    drainMessages: Math.round(counts.drainMessages / 20),
    chains: Math.round(counts.chains * 0.4),
    hops: Math.round(counts.hops / 2)
  }),
  runs: (counts) => ["w1", ...counts.drainConcurrency.map((c) => `w2@${c}` as const), "w3"],
  bars: [
    Bars.ratio("w1", "p50", "raw", "≤", 2),
    Bars.ratio("w2@16", "msgPerSec", "raw", "≥", 0.8),
    Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.5)
  ]
}
