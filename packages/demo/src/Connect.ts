/**
 * The demo's provider layer. Where `--backend pgmq` or `rabbitmq` finds its
 * URL unset, the demo (never the library, which has no default address) uses
 * the local server's well-known address and says so on stderr, host only.
 */
import { Backend } from "@conveyor/backend"
import type { Messaging } from "@conveyor/core"
import { Config, ConfigProvider, Console, Effect, Layer, Option } from "effect"

/** The local servers of the README's set-up (and of CI), by the variable that names them. */
export const localServers = {
  DATABASE_URL: { url: "postgres://postgres@127.0.0.1:5432/test", server: "PostgreSQL" },
  RABBITMQ_URL: { url: "amqp://guest:guest@127.0.0.1:5672", server: "RabbitMQ" }
} as const

const variableOf = (backend: Backend.Name): keyof typeof localServers | undefined =>
  backend === "pgmq" ? "DATABASE_URL" : backend === "rabbitmq" ? "RABBITMQ_URL" : undefined

export const layer = (backend: Backend.Name): Layer.Layer<Messaging.Messaging, Backend.StartError> =>
  Layer.unwrap(Effect.gen(function*() {
    const variable = variableOf(backend)
    if (variable === undefined || Option.isSome(yield* Config.option(Config.String(variable)))) return Backend.layer(backend)
    const local = localServers[variable]
    yield* Console.error(`${variable} is unset: using the local ${local.server} at ${new URL(local.url).host}`)
    return Backend.layer(backend).pipe(Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ [variable]: local.url }))))
  }))
