/**
 * One LISTEN connection per layer, for every channel of every subscription.
 *
 * Subscribers register the channels they need (reference-counted: LISTEN on
 * the first, UNLISTEN after the last); notifications are decoded once and
 * offered to each interested subscriber's own unbounded queue, so a slow
 * subscriber never blocks another. When the connection dies, health turns
 * `Degraded`; the connection is re-opened on the reconnect `Schedule`, every
 * channel is LISTENed again and health turns `Reconnected` (notifications
 * sent during the gap are lost: consumers sweep on that signal).
 */
import { MessageNotification, type QueueName } from "@conveyor/core"
import { PgConnection } from "@effect/sql-pg"
import {
  Clock,
  Context,
  Deferred,
  Effect,
  Exit,
  Option,
  Queue,
  Result,
  Schedule,
  Scope,
  Semaphore,
  Stream,
  SubscriptionRef
} from "effect"
import type { SqlError } from "effect/sql/SqlError"
import * as PgmqEvent from "./PgmqEvent.ts"
import * as NotifyConfig from "./PgmqNotifyConfig.ts"

export class PgmqListener extends Context.Service<PgmqListener, {
  /** Every decoded event on `channels`, from the moment LISTEN is confirmed. */
  readonly events: (channels: ReadonlyArray<string>) => Stream.Stream<PgmqEvent.PgmqEvent>
  /** The events about `queues`, each heard on its queue's channel. */
  readonly queueEvents: (queues: ReadonlyArray<QueueName.QueueName>) => Stream.Stream<PgmqEvent.PgmqEvent>
  /** The current push health first, then every change. */
  readonly health: Stream.Stream<MessageNotification.PushHealth>
  readonly currentHealth: Effect.Effect<MessageNotification.PushHealth>
  /** The backend process id of the listening connection, while it is up. */
  readonly backendPid: Effect.Effect<Option.Option<number>>
}>()("@conveyor/pgmq/PgmqListener") {}

export interface ListenerOptions {
  readonly connection: PgConnection.Config
  readonly notify: NotifyConfig.NotifyConfig
  /**
   * Which channel announces a queue's messages: Conveyor's triggers
   * (`conveyor`), or only the extension's `pgmq.q_<name>.INSERT` (`extension`).
   */
  readonly source: "conveyor" | "extension"
  /** Paces reconnect attempts; when it ends, it starts over (the listener never gives up). */
  readonly reconnect: Schedule.Schedule<unknown, unknown>
}

interface Sink {
  readonly queue: Queue.Queue<PgmqEvent.PgmqEvent>
  readonly accept: (event: PgmqEvent.PgmqEvent) => boolean
}

interface Session {
  readonly connection: PgConnection.PgConnection
  readonly scope: Scope.Closeable
  readonly listening: Map<string, Scope.Closeable>
  readonly died: Deferred.Deferred<never, SqlError>
}

/**
 * Opens the listening connection (retrying on `reconnect`; fails with the last
 * `SqlError` when the schedule ends) and keeps it up until the scope closes.
 */
export const make = (options: ListenerOptions): Effect.Effect<PgmqListener["Service"], SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const layerScope = yield* Scope.Scope
    const lock = yield* Semaphore.make(1)
    const sinks = new Map<string, Set<Sink>>()
    // Always listened, so a dead connection is noticed even with no subscriber.
    const permanent = NotifyConfig.queueCreatedChannel(options.notify)
    let session: Session | undefined

    const namespaceOf = (queue: string) => NotifyConfig.namespaceOf(options.notify, queue)

    const dispatch = (channel: string, payload: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const targets = sinks.get(channel)
        if (targets === undefined || targets.size === 0) return Effect.void
        const decoded = PgmqEvent.decode(channel, payload, namespaceOf, new Date(now))
        if (Result.isFailure(decoded)) {
          return Effect.logWarning(`Ignoring a notification on ${channel}: ${decoded.failure}`)
        }
        for (const sink of targets) {
          if (sink.accept(decoded.success)) Queue.offerUnsafe(sink.queue, decoded.success)
        }
        return Effect.void
      })

    const listenOn = (current: Session, channel: string) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(current.scope)
        const notifications = yield* current.connection.listen(channel).pipe(
          Scope.provide(scope),
          Effect.tapError(() => Scope.close(scope, Exit.void))
        )
        current.listening.set(channel, scope)
        yield* Stream.fromQueue(notifications).pipe(
          Stream.runForEach((notification) => dispatch(notification.channel, notification.payload)),
          Effect.catch((error) => Deferred.fail(current.died, error)),
          Effect.forkIn(scope)
        )
      }).pipe(Effect.catch((error) => Deferred.fail(current.died, error)))

    const unlistenOn = (current: Session, channel: string) =>
      Effect.suspend(() => {
        const scope = current.listening.get(channel)
        current.listening.delete(channel)
        return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
      })

    const connect = Effect.gen(function*() {
      const scope = yield* Scope.make()
      return yield* Effect.gen(function*() {
        const base = yield* PgConnection.make(options.connection).pipe(Scope.provide(scope))
        const connection = yield* base.pin.pipe(Scope.provide(scope))
        const current: Session = { connection, scope, listening: new Map(), died: yield* Deferred.make<never, SqlError>() }
        yield* lock.withPermit(Effect.gen(function*() {
          for (const channel of [permanent, ...sinks.keys()]) {
            if (!current.listening.has(channel)) yield* listenOn(current, channel)
          }
          session = current
        }))
        // A LISTEN that failed on the way means this session is already dead.
        if (yield* Deferred.isDone(current.died)) yield* Deferred.await(current.died)
        return current
      }).pipe(Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))))
    })

    const endSession = (current: Session) =>
      lock.withPermit(Effect.sync(() => {
        if (session === current) session = undefined
      })).pipe(Effect.andThen(Scope.close(current.scope, Exit.void)))

    const first = yield* connect.pipe(Effect.retry(options.reconnect))
    const health = yield* SubscriptionRef.make<MessageNotification.PushHealth>(MessageNotification.PushHealth.Connected())

    const supervise = Effect.gen(function*() {
      let current = first
      while (true) {
        const error = yield* Effect.flip(Deferred.await(current.died))
        yield* endSession(current)
        yield* SubscriptionRef.set(health, MessageNotification.PushHealth.Degraded({ reason: error.message }))
        yield* Effect.logWarning(`PGMQ listener connection lost (${error.message}); reconnecting`)
        current = yield* connect.pipe(
          Effect.retry(options.reconnect),
          Effect.tapError((error) => Effect.logWarning(`PGMQ listener still down: ${error.message}`)),
          Effect.retry(Schedule.forever)
        )
        yield* SubscriptionRef.set(health, MessageNotification.PushHealth.Reconnected())
      }
    })
    yield* Effect.forkIn(supervise, layerScope)
    yield* Scope.addFinalizer(layerScope, Effect.suspend(() => session === undefined ? Effect.void : endSession(session)))

    const register = (entries: ReadonlyArray<readonly [string, (event: PgmqEvent.PgmqEvent) => boolean]>) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          const queue = yield* Queue.unbounded<PgmqEvent.PgmqEvent>()
          const added: Array<readonly [string, Sink]> = []
          yield* lock.withPermit(Effect.gen(function*() {
            for (const [channel, accept] of entries) {
              const sink: Sink = { queue, accept }
              const targets = sinks.get(channel) ?? new Set()
              sinks.set(channel, targets)
              targets.add(sink)
              added.push([channel, sink])
              if (session !== undefined && !session.listening.has(channel)) yield* listenOn(session, channel)
            }
          }))
          return { queue, added }
        }),
        ({ added, queue }) =>
          lock.withPermit(Effect.gen(function*() {
            for (const [channel, sink] of added) {
              const targets = sinks.get(channel)
              targets?.delete(sink)
              if (targets !== undefined && targets.size === 0) {
                sinks.delete(channel)
                if (session !== undefined && channel !== permanent) yield* unlistenOn(session, channel)
              }
            }
          })).pipe(Effect.andThen(Queue.shutdown(queue)))
      )

    const stream = (entries: ReadonlyArray<readonly [string, (event: PgmqEvent.PgmqEvent) => boolean]>) =>
      Stream.unwrap(Effect.map(register(entries), ({ queue }) => Stream.fromQueue(queue)))

    const queueChannel = (queue: string) =>
      options.source === "extension"
        ? NotifyConfig.extensionInsertChannel(queue)
        : NotifyConfig.messageChannel(options.notify, queue)

    const queueEvents = (queues: ReadonlyArray<QueueName.QueueName>) => {
      const byChannel = new Map<string, Set<string>>()
      for (const queue of queues) {
        const channel = queueChannel(queue)
        byChannel.set(channel, (byChannel.get(channel) ?? new Set()).add(queue))
      }
      return stream(
        [...byChannel].map(([channel, names]) =>
          [channel, (event: PgmqEvent.PgmqEvent) => event._tag !== "QueueCreated" && names.has(event.queueName)] as const
        )
      )
    }

    return PgmqListener.of({
      events: (channels) => stream([...new Set(channels)].map((channel) => [channel, () => true] as const)),
      queueEvents,
      health: SubscriptionRef.changes(health),
      currentHealth: SubscriptionRef.get(health),
      backendPid: Effect.sync(() => Option.fromNullishOr(session?.connection.processId))
    })
  })
