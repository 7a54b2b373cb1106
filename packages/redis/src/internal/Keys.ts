/**
 * Where a queue lives in Redis. Every key of a queue starts with the layer's
 * prefix and the (validated) queue name, so queues never share keys:
 * - `<prefix>q:<queue>`          the stream of messages (one consumer group per layer group)
 * - `<prefix>d:<queue>`          delayed sends, a sorted set scored by due time
 * - `<prefix>w:<queue>`          a one-entry stream that wakes blocked subscribers (delays, nacks), read through the group
 * - `<prefix>v:<queue>:<group>`  the group's claims, scored by visibility deadline
 * - `<prefix>r:<queue>:<group>`  the group's nacked claims, scored by when they are visible again
 * - `<prefix>j:<queue>:<group>`  the janitor's next run and cursor (claimScripts.claim), a hash
 * - `<prefix>queues`             the set of queues ensured through any layer of this prefix
 */
import { MessagingError, QueueName } from "@conveyor/core"
import { Effect } from "effect"

export interface QueueKeys {
  readonly stream: string
  readonly delayed: string
  readonly wake: string
  readonly inFlight: string
  readonly retry: string
  readonly janitor: string
}

const prefixPattern = /^[A-Za-z0-9_.:{}-]{0,64}$/
const namePattern = /^[A-Za-z0-9_.:-]{1,64}$/

const invalid = (what: string, value: string, rule: string) =>
  new MessagingError.ProviderError({
    provider: "redis",
    operation: "configure",
    message: `Invalid Redis ${what} ${JSON.stringify(value)}: must match ${rule}`
  })

/** A group, consumer or connection name: a plain word, no spaces or control characters. */
export const validateName = (what: string, value: string) =>
  namePattern.test(value) ? Effect.void : Effect.fail(invalid(what, value, String(namePattern)))

/** The prefix, group and consumer name become parts of keys and arguments: checked once, at layer build. */
export const validate = (options: { readonly prefix: string; readonly group: string; readonly consumer: string }) =>
  Effect.gen(function*() {
    if (!prefixPattern.test(options.prefix)) return yield* Effect.fail(invalid("key prefix", options.prefix, String(prefixPattern)))
    yield* validateName("consumer group", options.group)
    yield* validateName("consumer name", options.consumer)
  })

export const make = (prefix: string, group: string) => {
  const cache = new Map<QueueName.QueueName, QueueKeys>()
  const of = (queue: QueueName.QueueName): QueueKeys => {
    let keys = cache.get(queue)
    if (keys === undefined) {
      keys = {
        stream: `${prefix}q:${queue}`,
        delayed: `${prefix}d:${queue}`,
        wake: `${prefix}w:${queue}`,
        inFlight: `${prefix}v:${queue}:${group}`,
        retry: `${prefix}r:${queue}:${group}`,
        janitor: `${prefix}j:${queue}:${group}`
      }
      cache.set(queue, keys)
    }
    return keys
  }
  return { of, registry: `${prefix}queues`, forget: (queue: QueueName.QueueName) => cache.delete(queue) }
}

export type Keys = ReturnType<typeof make>
