/**
 * Redis Streams: Conveyor's provider next to a raw node-redis loop doing the
 * same, on the same server (`REDIS_URL`). Both use a key prefix unique to the
 * measuring process and delete their keys when done (the shared server is
 * used by tests too).
 */
import { Redis } from "@conveyor/redis"
import { Layer, Redacted } from "effect"
import * as Bars from "./Bars.ts"
import * as Conveyor from "./Conveyor.ts"
import type { Provider } from "./Provider.ts"
import * as Raw from "./redisRaw.ts"
import { tag } from "./Stats.ts"

export const provider: Provider = {
  name: "redis",
  subjects: [
    Conveyor.subject({
      layer: Redis.layer({ url: Redacted.make(Raw.url), prefix: `bench:${tag()}:`, connectionName: "conveyor-bench" }).pipe(
        Layer.orDie
      ),
      config: "Redis.layer (defaults); Consumer.run({ concurrency: handlers, batchSize: handlers }) (claims of handlers, as raw's COUNT)",
      runOptions: (concurrency) => ({ concurrency, batchSize: concurrency })
    }),
    Raw.subject
  ],
  runs: (counts) => ["w1", ...counts.drainConcurrency.map((c) => `w2@${c}` as const), "w3"],
  bars: [
    Bars.ratio("w1", "p50", "raw", "≤", 2),
    Bars.ratio("w2@16", "msgPerSec", "raw", "≥", 0.8),
    Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.5)
  ]
}
