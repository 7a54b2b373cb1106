/**
 * SQS: Conveyor's provider next to the raw AWS SDK long-poll loop, each
 * against a fauxqs emulator of its own started in the measuring process on
 * loopback (sqsRaw.ts). W2 drains a quarter of the shared count: the
 * emulator, in the same process as the subject, is the bottleneck for both.
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
    Conveyor.subject({
      layer,
      config: "Sqs.layer (defaults: long polls of 20 s); Consumer.run({ concurrency: handlers, batchSize: handlers }), Hybrid",
      runOptions: (concurrency) => ({ concurrency, batchSize: concurrency })
    }),
    Raw.subject
  ],
  counts: (counts) => ({ ...counts, drainMessages: counts.drainMessages / 4 }),
  runs: (counts) => ["w1", ...counts.drainConcurrency.map((c) => `w2@${c}` as const), "w3"],
  bars: [
    Bars.ratio("w1", "p50", "raw", "≤", 2),
    Bars.ratio("w2@16", "msgPerSec", "raw", "≥", 0.8),
    Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.5)
  ]
}
