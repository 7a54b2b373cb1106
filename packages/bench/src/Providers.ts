/** Every provider the bench knows, in the order a full run measures them. */
import type { Provider } from "./Provider.ts"

export const providers = {
  memory: () => import("./memory.ts"),
  pgmq: () => import("./pgmq.ts"),
  rabbitmq: () => import("./rabbitmq.ts"),
  redis: () => import("./redis.ts"),
  sqs: () => import("./sqs.ts")
} satisfies Record<string, () => Promise<{ readonly provider: Provider }>>

export type ProviderName = keyof typeof providers

export const providerNames = Object.keys(providers) as ReadonlyArray<ProviderName>
