/**
 * PostgreSQL: Conveyor's PGMQ provider next to the raw `pg` ceiling on the
 * same schema, graphile-worker and pg-boss (two set-ups), all against the
 * same server (`DATABASE_URL`).
 */
import { Pgmq } from "@conveyor/pgmq"
import { Layer, Redacted } from "effect"
import * as Bars from "./Bars.ts"
import * as Conveyor from "./Conveyor.ts"
import * as GraphileWorker from "./peers/graphileWorker.ts"
import * as PgBoss from "./peers/pgBoss.ts"
import * as Raw from "./pgmqRaw.ts"
import { url } from "./Postgres.ts"
import type { Provider } from "./Provider.ts"

const peers = [GraphileWorker.subject.name, PgBoss.notify.name, PgBoss.poll.name]

export const provider: Provider = {
  name: "pgmq",
  subjects: [
    Conveyor.subject({
      layer: Pgmq.layer({ url: Redacted.make(url), maxConnections: 10, applicationName: "conveyor-bench" }).pipe(
        Layer.orDie
      ),
      config: "Pgmq.layer (pool 10, defaults); Consumer.run({ concurrency: handlers }), Hybrid"
    }),
    Raw.subject,
    Raw.flushed,
    GraphileWorker.subject,
    PgBoss.notify,
    PgBoss.poll
  ],
  runs: (counts) => ["w1", ...counts.drainConcurrency.map((c) => `w2@${c}` as const), "w3"],
  bars: [
    Bars.ratio("w3", "msgPerSec", "raw", "≥", 0.5),
    Bars.ratio("w3", "hopP50", "raw", "≤", 2),
    Bars.ratio("w3", "firstHopP50", "raw", "≤", 3),
    Bars.ratio("w2@16", "msgPerSec", "raw", "≥", 0.8),
    Bars.noDropOff("w2@64", "w2@16", "msgPerSec"),
    Bars.ratio("w1", "p50", "raw", "≤", 1.3),
    Bars.absolute("w1", "p99", "≤", 5),
    ...peers.flatMap((peer) => [
      Bars.ahead(peer, "w1", "p50"),
      Bars.ahead(peer, "w2@16", "msgPerSec"),
      Bars.ahead(peer, "w2@64", "msgPerSec"),
      Bars.ahead(peer, "w3", "msgPerSec")
    ])
  ]
}
