/**
 * Shared by the Redis tests: the server URL (`REDIS_URL` overrides the local
 * default), layers with fast reconnects and a key prefix of their own (so a
 * run never sees another run's keys), and raw node-redis access for
 * arranging and inspecting what the provider must cope with.
 */
import { Effect, Redacted, Schedule } from "effect"
import { createClient } from "redis"
import { QueueName } from "@conveyor/core"
import { Redis } from "@conveyor/redis"

export const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

const suffix = () => Math.random().toString(36).slice(2, 10)

export const uniqueQueue = (prefix: string): QueueName.QueueName => QueueName.makeUnsafe(`t_${prefix}_${suffix()}`)

export const uniquePrefix = (name: string) => `conveyor-test:${name}:${suffix()}:`

/** Quick retries so fault tests do not wait on the production backoff. */
export const fastReconnect = Schedule.exponential("50 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 12 }))

export const layer = (options: Partial<Redis.RedisOptions> = {}) =>
  Redis.layer({ url: Redacted.make(url), prefix: uniquePrefix("redis"), reconnect: fastReconnect, ...options })

/** A raw node-redis client for arranging and inspecting, closed with the scope. */
export const raw = (target: string = url) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ url: target, socket: { reconnectStrategy: false } })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close().catch(() => undefined))
  )
