/**
 * The provider switch by configuration: application code asks for
 * `Messaging` and this layer decides, from `MESSAGING_BACKEND`, which
 * provider supplies it. It imports every provider, which is why it lives
 * outside `@conveyor/core`.
 */
import { InMemory, type Messaging } from "@conveyor/core"
import { Config, Effect, Layer } from "effect"

export const names = ["memory"] as const

export type Name = typeof names[number]

/**
 * `MESSAGING_BACKEND`, `memory` when unset. Any other value fails with a
 * `ConfigError` naming the variable and the accepted values.
 */
export const name: Config.Config<Name> = Config.Literals(names, "MESSAGING_BACKEND").pipe(
  Config.withDefault<Name>("memory")
)

/** The provider called `backend`. */
export const layer = (backend: Name): Layer.Layer<Messaging.Messaging, Config.ConfigError> => {
  switch (backend) {
    case "memory":
      return InMemory.layer()
  }
}

/** The provider named by `MESSAGING_BACKEND` (see `name`). */
export const layerConfig: Layer.Layer<Messaging.Messaging, Config.ConfigError> = Layer.unwrap(
  Effect.map(name, layer)
)
