/** RabbitMQ: Conveyor's provider next to raw amqplib doing the same, on the same broker (`RABBITMQ_URL`). */
import { RabbitMq } from "@conveyor/rabbitmq"
import { Layer, Redacted } from "effect"
import * as Bars from "./Bars.ts"
import * as Conveyor from "./Conveyor.ts"
import type { Provider } from "./Provider.ts"
import * as Raw from "./rabbitmqRaw.ts"

const prefetch = 64

export const provider: Provider = {
  name: "rabbitmq",
  subjects: [
    Conveyor.subject({
      layer: RabbitMq.layer({ url: Redacted.make(Raw.url), connectionName: "conveyor-bench", prefetch }).pipe(Layer.orDie),
      config:
        "RabbitMq.layer; Consumer.run({ concurrency: handlers, batchSize: handlers }) (prefetch = handlers + batchSize: running handlers and a full inbox; raw: prefetch = handlers)",
      runOptions: (concurrency) => ({ concurrency, batchSize: concurrency })
    }),
    Raw.subject
  ],
  runs: (counts) => ["w1", ...counts.drainConcurrency.map((c) => `w2@${c}` as const), "w3"],
  bars: [
    Bars.ratio("w2@16", "msgPerSec", "raw", "≥", 0.8),
    Bars.noDropOff("w2@64", "w2@16", "msgPerSec"),
    Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.5)
  ]
}
