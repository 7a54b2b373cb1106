/** Queue statistics and the health probe. */
import { HealthCheck, type MessageNotification, type Messaging, type QueueName } from "@conveyor/core"
import { Effect } from "effect"
import { fromSqlOn, provider } from "./errors.ts"
import type { Queues } from "./queues.ts"
import type { Tables } from "./tables.ts"

export const make = (
  { sql, table }: Tables,
  queues: Queues,
  pushHealth: Effect.Effect<MessageNotification.PushHealth>
) => {
  const stats = (queue: QueueName.QueueName) =>
    Effect.gen(function*() {
      const [row] = yield* sql<{
        readonly depth: number
        readonly visible: number
        readonly in_flight: number
        readonly delayed: number
        readonly oldest_age_ms: number | null
      }>`
        SELECT count(*)::integer AS depth,
               (count(*) FILTER (WHERE vt <= clock_timestamp()))::integer AS visible,
               (count(*) FILTER (WHERE vt > clock_timestamp() AND read_ct > 0))::integer AS in_flight,
               (count(*) FILTER (WHERE vt > clock_timestamp() AND read_ct = 0))::integer AS delayed,
               (extract(epoch FROM clock_timestamp() - min(enqueued_at)) * 1000)::float8 AS oldest_age_ms
        FROM pgmq.${table(queue)}`
      const dead = yield* queues.deadLettered(queue)
      const result: Messaging.QueueStats = {
        queue,
        depth: row?.depth ?? 0,
        visible: row?.visible ?? 0,
        inFlight: row?.in_flight ?? 0,
        delayed: row?.delayed ?? 0,
        ...(row?.oldest_age_ms == null ? {} : { oldestAgeMs: Math.max(0, row.oldest_age_ms) }),
        ...(dead === undefined ? {} : { deadLettered: dead })
      }
      return result
    }).pipe(Effect.mapError(fromSqlOn("stats", queue)))

  const healthCheck = HealthCheck.probe({
    provider,
    server: "PostgreSQL",
    roundTrip: sql`SELECT 1`,
    push: Effect.map(pushHealth, (state) => state._tag)
  })

  return { stats, healthCheck }
}
