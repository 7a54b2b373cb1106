/**
 * The provider switch by configuration: application code asks for
 * `Messaging` and this layer decides, from `MESSAGING_BACKEND`, which
 * provider supplies it. It imports every provider, which is why it lives
 * outside `@conveyor/core`.
 */
import { InMemory, type Messaging } from "@conveyor/core"
import { Pgmq } from "@conveyor/pgmq"
import { RabbitMq } from "@conveyor/rabbitmq"
import { Redis } from "@conveyor/redis"
import { Config, Effect, Layer, Redacted } from "effect"

export const names = ["memory", "pgmq", "rabbitmq", "redis"] as const

export type Name = typeof names[number]

/**
 * `MESSAGING_BACKEND`, `memory` when unset. Any other value fails with a
 * `ConfigError` naming the variable and the accepted values.
 */
export const name: Config.Config<Name> = Config.Literals(names, "MESSAGING_BACKEND").pipe(
  Config.withDefault<Name>("memory")
)

/** Why the selected provider could not start: its configuration, or the provider's own start errors (which cover RabbitMQ's and Redis's `ConnectionError` and `ProviderError`). */
export type StartError = Config.ConfigError | Pgmq.StartError

/** Where `redis` connects when `REDIS_URL` is unset: the local server. */
export const defaultRedisUrl = "redis://127.0.0.1:6379"

/**
 * The provider called `backend`. `pgmq` reads `DATABASE_URL`, `rabbitmq`
 * reads `RABBITMQ_URL` and `redis` reads `REDIS_URL` (default
 * `defaultRedisUrl`), all as `Redacted` so they never reach an error or a
 * log; each provider's other options keep their defaults.
 */
export const layer = (backend: Name): Layer.Layer<Messaging.Messaging, StartError> => {
  switch (backend) {
    case "memory":
      return InMemory.layer()
    case "pgmq":
      return Pgmq.layerConfig({ url: Config.Redacted("DATABASE_URL") })
    case "rabbitmq":
      return RabbitMq.layerConfig({ url: Config.Redacted("RABBITMQ_URL") })
    case "redis":
      return Redis.layerConfig({
        url: Config.Redacted("REDIS_URL").pipe(Config.withDefault(Redacted.make(defaultRedisUrl)))
      })
  }
}

/** The provider named by `MESSAGING_BACKEND` (see `name`). */
export const layerConfig: Layer.Layer<Messaging.Messaging, StartError> = Layer.unwrap(Effect.map(name, layer))
