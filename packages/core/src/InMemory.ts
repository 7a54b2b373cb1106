/**
 * The in-memory provider: the whole contract (visibility timeout, delay,
 * receiveCount, dead-lettering, push of full messages, stale receipts) in
 * one process, on Effect's Clock so tests drive it with TestClock.
 */
import { Array as Arr, Clock, Deferred, Duration, Effect, Exit, Layer, Option, Stream } from "effect"
import { type Entry, MemoryQueue, owns } from "./internal/memoryQueue.ts"
import type { Headers, Json, QueuedMessage, Receipt } from "./Message.ts"
import { Message, PushHealth } from "./MessageNotification.ts"
import * as Messaging from "./Messaging.ts"
import { type ProviderError, QueueNotFound, type StaleReceipt } from "./MessagingError.ts"
import { instrument } from "./Observability.ts"
import * as Payload from "./Payload.ts"
import * as QueueName from "./QueueName.ts"
import * as Receipts from "./Receipts.ts"

const provider = "memory"

export interface Options {
  /** Largest encoded payload accepted, in bytes (default 1 MiB). */
  readonly maxPayloadBytes?: number
}

export const capabilities: Messaging.Capabilities = {
  push: "message",
  requiresFallbackPolling: false,
  fallbackPollingInterval: Duration.seconds(1),
  fetchById: true,
  delayedDelivery: true,
  deadLetter: true
}

/** What a memory receipt carries: the entry it claimed, so settling looks nothing up. */
class Token {
  readonly target: MemoryQueue
  readonly entry: Entry
  readonly claim: number
  constructor(target: MemoryQueue, entry: Entry) {
    this.target = target
    this.entry = entry
    this.claim = entry.claim
  }
}

const millis = (input: Duration.Input | undefined): number =>
  input === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(input))

export const make = (options: Options = {}): Effect.Effect<Messaging.Messaging["Service"]> =>
  Effect.sync(() => {
    const maxBytes = options.maxPayloadBytes ?? Payload.defaultMaxBytes
    const queues = new Map<QueueName.QueueName, MemoryQueue>()
    let seq = 0
    let claims = 0
    const notFound = (queue: QueueName.QueueName) => new QueueNotFound({ queue, message: `Queue ${queue} does not exist` })
    const lookup = (queue: QueueName.QueueName): Effect.Effect<MemoryQueue, QueueNotFound> =>
      Effect.suspend(() => {
        const found = queues.get(queue)
        return found === undefined ? Effect.fail(notFound(queue)) : Effect.succeed(found)
      })

    const toMessage = (queue: QueueName.QueueName, target: MemoryQueue, entry: Entry, visibleUntil: Date): QueuedMessage => {
      const id = entry.id
      const receipt: Receipt = { provider, queue, messageId: id, token: new Token(target, entry) }
      return {
        queue,
        id,
        receipt,
        payload: JSON.parse(entry.body) as Json,
        headers: entry.headers,
        receiveCount: entry.receiveCount,
        enqueuedAt: new Date(entry.enqueuedAt),
        visibleUntil
      }
    }

    const create = (name: QueueName.QueueName) => {
      if (!queues.has(name)) queues.set(name, new MemoryQueue())
    }

    const ensureQueue = (queue: QueueName.QueueName) =>
      Effect.map(QueueName.ensurable(queue), () => {
        create(queue)
        create(QueueName.deadLetter(queue))
      })

    const enqueue = (
      target: MemoryQueue,
      body: string,
      headers: Headers,
      now: number,
      delayMs: number
    ) => target.add(++seq, body, headers, now, now + delayMs).id

    // Few steps, no generator: a workflow's handler sends once per message.
    const sendBatch: Messaging.Messaging["Service"]["sendBatch"] = (queue, payloads, sendOptions) =>
      Effect.flatMap(lookup(queue), (target) =>
        Effect.flatMap(Payload.encodeAll(queue, payloads, maxBytes), (bodies) =>
          Effect.withFiber((fiber) => {
            const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
            const delayMs = millis(sendOptions?.delay)
            const ids = bodies.map((body) => enqueue(target, body, sendOptions?.headers ?? {}, now, delayMs))
            target.changed()
            return Effect.succeed(ids)
          })))

    const claimFrom = (queue: QueueName.QueueName, target: MemoryQueue, now: number, max: number, visibilityMs: number) => {
      const claimed: Array<QueuedMessage> = []
      // One claim's messages are visible until the same instant, so they share its Date (as Redis's do).
      const visibleUntil = new Date(now + visibilityMs)
      while (claimed.length < max) {
        const entry = target.claimNext(++claims, now, visibilityMs)
        if (entry === undefined) break
        claimed.push(toMessage(queue, target, entry, visibleUntil))
      }
      return claimed
    }

    /** What a receipt still owns at `now`, or why it owns nothing. */
    const owned = (receipt: Receipt, now: number): Token | ProviderError | StaleReceipt => {
      const token = receipt.token
      if (receipt.provider !== provider || !(token instanceof Token)) return Receipts.foreign(receipt, provider, "settle")
      return owns(token.entry, token.claim, now) ? token : Receipts.stale(receipt)
    }

    /**
     * Runs `settle` on what a receipt still owns, or fails with `StaleReceipt`. One step and
     * no lookup: it is on every ack's path.
     */
    const withOwned = (
      receipt: Receipt,
      settle: (token: Token, now: number) => Effect.Effect<void> | void
    ): Effect.Effect<void, ProviderError | StaleReceipt> =>
      Effect.withFiber((fiber): Effect.Effect<void, ProviderError | StaleReceipt> => {
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const token = owned(receipt, now)
        return token instanceof Token ? settle(token, now) ?? Effect.void : Effect.fail(token)
      })

    const remove = ({ entry, target }: Token) => target.remove(entry)

    const subscribe: Messaging.Messaging["Service"]["subscribe"] = (names, subscribeOptions) => {
      const visibilityMs = millis(subscribeOptions.visibilityTimeout)
      const batch = subscribeOptions.prefetch ?? 64
      const next = (
        targets: ReadonlyArray<readonly [QueueName.QueueName, MemoryQueue]>,
        wakeUp: { signal: Deferred.Deferred<void> }
      ) =>
        Effect.gen(function*() {
          for (;;) {
            // Armed before looking, so a change made after the look cannot be missed.
            const signal = wakeUp.signal = Deferred.makeUnsafe<void>()
            // Deleted (and maybe made again: a new queue, which this subscription never read).
            const gone = targets.find(([queue, target]) => queues.get(queue) !== target)
            if (gone !== undefined) return yield* Effect.fail(notFound(gone[0]))
            const now = yield* Clock.currentTimeMillis
            const claimed = targets.flatMap(([queue, target]) => claimFrom(queue, target, now, batch, visibilityMs))
            // Returned in the same step as claimed: a subscription holds nothing it has not emitted.
            if (Arr.isArrayNonEmpty(claimed)) {
              return Arr.map(claimed, (message) => Message({ message }))
            }
            const due = targets.reduce<number | undefined>((soonest, [, target]) => {
              const at = target.nextVisibleAt(now)
              return at === undefined || (soonest !== undefined && soonest <= at) ? soonest : at
            }, undefined)
            yield* due === undefined
              ? Deferred.await(signal)
              : Effect.raceFirst(Deferred.await(signal), Effect.sleep(due - now))
          }
        })
      return Stream.unwrap(
        Effect.gen(function*() {
          const targets = yield* Effect.forEach(names, (queue) => Effect.map(lookup(queue), (target) => [queue, target] as const))
          // Woken only by changes to its own queues.
          const wakeUp = { signal: Deferred.makeUnsafe<void>() }
          const watcher = () => Deferred.doneUnsafe(wakeUp.signal, Effect.void)
          yield* Effect.acquireRelease(
            Effect.sync(() => targets.forEach(([, target]) => target.watchers.add(watcher))),
            () => Effect.sync(() => targets.forEach(([, target]) => target.watchers.delete(watcher)))
          )
          return Stream.fromEffectRepeat(next(targets, wakeUp)).pipe(Stream.flattenArray)
        })
      )
    }

    const deleteQueue = (queue: QueueName.QueueName) =>
      Effect.sync(() => {
        for (const name of [queue, QueueName.deadLetter(queue)]) {
          const target = queues.get(name)
          queues.delete(name)
          // Purged first, so a receipt of a deleted queue is stale even if the queue is made
          // again; its subscriptions wake to find it gone, and end.
          target?.purge()
          target?.changed()
        }
      })

    const receive = (queue: QueueName.QueueName, receiveOptions: Messaging.ReceiveOptions) =>
      Effect.gen(function*() {
        const target = yield* lookup(queue)
        const now = yield* Clock.currentTimeMillis
        return claimFrom(queue, target, now, receiveOptions.max ?? 1, millis(receiveOptions.visibilityTimeout))
      })

    const fetch = (queue: QueueName.QueueName, id: string, fetchOptions: Messaging.FetchOptions) =>
      Effect.gen(function*() {
        const target = yield* lookup(queue)
        const now = yield* Clock.currentTimeMillis
        const entry = target.claimById(Number(id), ++claims, now, millis(fetchOptions.visibilityTimeout))
        return entry === undefined ? Option.none() : Option.some(toMessage(queue, target, entry, new Date(entry.visibleAt)))
      })

    const nack = (receipt: Receipt, nackOptions?: Messaging.NackOptions) =>
      withOwned(receipt, ({ entry, target }, now) => {
        if (nackOptions?.requeue === false) {
          target.remove(entry)
          const dlq = QueueName.deadLetter(receipt.queue)
          create(dlq)
          const deadLetters = queues.get(dlq)!
          enqueue(deadLetters, entry.body, entry.headers, now, 0)
          deadLetters.changed()
          return
        }
        target.release(entry, now, now + millis(nackOptions?.delay))
        target.changed()
      })

    const stats = (queue: QueueName.QueueName) =>
      Effect.gen(function*() {
        const target = yield* lookup(queue)
        const now = yield* Clock.currentTimeMillis
        const { oldest, ...counts } = target.counts(now)
        const deadLettered = queues.get(QueueName.deadLetter(queue))?.size ?? 0
        return { queue, ...counts, deadLettered, ...(oldest === undefined ? {} : { oldestAgeMs: now - oldest }) }
      })

    // Names are branded, but a cast forges one: memory checks them as every provider does.
    const valid = <A, E>(name: QueueName.QueueName, use: (queue: QueueName.QueueName) => Effect.Effect<A, E>) =>
      QueueName.is(name) ? use(name) : Effect.flatMap(QueueName.make(name), use)

    const ack = Receipts.checked((receipt: Receipt) => withOwned(receipt, remove))

    const service: Messaging.Messaging["Service"] = {
      provider,
      capabilities,
      ensureQueue: (queue) => valid(queue, ensureQueue),
      deleteQueue: (queue) => valid(queue, deleteQueue),
      queueExists: (queue) => valid(queue, (q) => Effect.sync(() => queues.has(q))),
      listQueues: Effect.sync(() => [...queues.keys()]),
      purgeQueue: (queue) => valid(queue, (q) => Effect.map(lookup(q), (target) => target.purge())),
      send: (queue, payload, sendOptions) =>
        valid(queue, (q) => Effect.map(sendBatch(q, [payload], sendOptions), (ids) => ids[0]!)),
      sendBatch: (queue, payloads, sendOptions) => valid(queue, (q) => sendBatch(q, payloads, sendOptions)),
      receive: (queue, receiveOptions) => valid(queue, (q) => receive(q, receiveOptions)),
      fetch: (queue, id, fetchOptions) => valid(queue, (q) => fetch(q, id, fetchOptions)),
      ack,
      // One step for them all: nothing to gather into a round trip in memory.
      ackAll: Receipts.checkedAll((receipts) =>
        Effect.withFiber((fiber) => {
          const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
          return Effect.succeed(receipts.map((receipt) => {
            const token = owned(receipt, now)
            if (!(token instanceof Token)) return Exit.fail(token)
            remove(token)
            return Exit.void
          }))
        })),
      nack: Receipts.checked(nack),
      extendVisibility: Receipts.checked((receipt, duration: Duration.Input) =>
        withOwned(receipt, ({ entry, target }, now) => target.extend(entry, now, now + millis(duration)))),
      stats: (queue) => valid(queue, stats),
      healthCheck: Effect.succeed({ provider, healthy: true, latencyMs: 0, push: "Connected" }),
      subscribe: (names, subscribeOptions) =>
        Stream.unwrap(Effect.map(Effect.forEach(names, QueueName.make), (checked) => subscribe(checked, subscribeOptions))),
      pushHealth: Stream.make(PushHealth.Connected())
    }
    return instrument(service)
  })

export const layer = (options: Options = {}): Layer.Layer<Messaging.Messaging> => Layer.effect(Messaging.Messaging, make(options))
