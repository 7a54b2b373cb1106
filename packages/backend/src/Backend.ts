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
import { Sqs } from "@conveyor/sqs"
import { Config, Effect, Layer, Option, Redacted } from "effect"

export const names = ["memory", "pgmq", "rabbitmq", "redis", "sqs"] as const

export type Name = typeof names[number]

/**
 * `MESSAGING_BACKEND`, `memory` when unset. Any other value fails with a
 * `ConfigError` naming the variable and the accepted values.
 */
export const name: Config.Config<Name> = Config.Literals(names, "MESSAGING_BACKEND").pipe(
  Config.withDefault<Name>("memory")
)

/** Why the selected provider could not start: its configuration, or the provider's own start errors (which cover RabbitMQ's and Redis's `ConnectionError` and `ProviderError`, and SQS's `ProviderError`). */
export type StartError = Config.ConfigError | Pgmq.StartError

/** Where `redis` connects when `REDIS_URL` is unset: the local server. */
export const defaultRedisUrl = "redis://127.0.0.1:6379"

/**
 * SQS's connection settings: `SQS_ENDPOINT` (an emulator's URL; AWS's own
 * endpoint when unset), `AWS_REGION` (default `us-east-1`), and the key pair
 * `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) read
 * through Config — the secrets as `Redacted` — or, when unset, the SDK's
 * default credential chain.
 */
export const sqsConfig: Config.Config<Sqs.SqsOptions> = Config.all({
  endpoint: Config.option(Config.String("SQS_ENDPOINT")),
  region: Config.String("AWS_REGION").pipe(Config.withDefault("us-east-1")),
  accessKeyId: Config.option(Config.String("AWS_ACCESS_KEY_ID")),
  secretAccessKey: Config.option(Config.Redacted("AWS_SECRET_ACCESS_KEY")),
  sessionToken: Config.option(Config.Redacted("AWS_SESSION_TOKEN"))
}).pipe(Config.map(({ accessKeyId, endpoint, region, secretAccessKey, sessionToken }) => ({
  endpoint: Option.getOrUndefined(endpoint),
  region,
  credentials: Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
    ? { accessKeyId: accessKeyId.value, secretAccessKey: secretAccessKey.value, sessionToken: Option.getOrUndefined(sessionToken) }
    : undefined
})))

/**
 * The provider called `backend`. `pgmq` reads `DATABASE_URL`, `rabbitmq`
 * reads `RABBITMQ_URL` and `redis` reads `REDIS_URL` (default
 * `defaultRedisUrl`), all as `Redacted` so they never reach an error or a
 * log; `sqs` reads `sqsConfig`; each provider's other options keep their defaults.
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
    case "sqs":
      return Sqs.layerConfig(sqsConfig)
  }
}

/** The provider named by `MESSAGING_BACKEND` (see `name`). */
export const layerConfig: Layer.Layer<Messaging.Messaging, StartError> = Layer.unwrap(Effect.map(name, layer))
