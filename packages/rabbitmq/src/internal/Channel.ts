/**
 * An AMQP channel with its liveness made visible. A server-side channel
 * error (a 404, a 406) or the connection's end closes it; `open` flips and
 * `closed` completes at that moment, and the owner's `onClose` runs so its
 * deliveries become stale at once.
 */
import type amqp from "amqplib"
import { Deferred, Effect, Semaphore } from "effect"
import type { MessagingError } from "@conveyor/core"
import { fromAmqp } from "./errors.ts"
import type { Connection } from "./Connection.ts"
import type { Link } from "./Link.ts"

export interface Channel<C extends amqp.Channel = amqp.Channel> {
  readonly id: number
  readonly link: Link
  readonly raw: C
  readonly closed: Deferred.Deferred<void>
  open: boolean
}

let nextChannelId = 0

export const open = <C extends amqp.Channel>(
  link: Link,
  create: (model: amqp.ChannelModel) => Promise<C>,
  onClose: (channel: Channel<C>) => void = () => {}
): Effect.Effect<Channel<C>, MessagingError.MessagingError> =>
  Effect.tryPromise({ try: () => create(link.model), catch: fromAmqp("channel.open") }).pipe(
    Effect.map((raw) => {
      const channel: Channel<C> = { id: ++nextChannelId, link, raw, closed: Deferred.makeUnsafe<void>(), open: true }
      // The close event follows; listening to "error" keeps EventEmitter from throwing.
      raw.on("error", () => {})
      raw.on("close", () => {
        channel.open = false
        Deferred.doneUnsafe(channel.closed, Effect.void)
        onClose(channel)
      })
      return channel
    })
  )

export const plain = (model: amqp.ChannelModel) => model.createChannel()
export const confirm = (model: amqp.ChannelModel) => model.createConfirmChannel()

export const close = (channel: Channel<amqp.Channel>): Effect.Effect<void> =>
  Effect.promise(() => channel.open ? channel.raw.close().catch(() => undefined) : Promise.resolve())

export const isUsable = (channel: Channel<amqp.Channel> | undefined): channel is Channel<amqp.Channel> =>
  channel !== undefined && channel.open && channel.link.alive

/**
 * A channel that is reopened on the live link whenever the previous one
 * closed, e.g. after a 404 or a reconnect.
 */
export const reopening = <C extends amqp.Channel>(
  connection: Connection,
  make: (link: Link) => Effect.Effect<Channel<C>, MessagingError.MessagingError>
) => {
  let current: Channel<C> | undefined
  const lock = Semaphore.makeUnsafe(1)
  const usable = () => (isUsable(current) ? current as Channel<C> : undefined)
  const reopen = lock.withPermits(1)(Effect.suspend(() => {
    const ready = usable()
    return ready !== undefined ? Effect.succeed(ready) : connection.current.pipe(
      Effect.flatMap(make),
      Effect.tap((channel) => Effect.sync(() => (current = channel)))
    )
  }))
  return {
    get: Effect.suspend((): Effect.Effect<Channel<C>, MessagingError.MessagingError> => {
      const ready = usable()
      return ready !== undefined ? Effect.succeed(ready) : reopen
    }),
    close: Effect.suspend(() => (current === undefined ? Effect.void : close(current)))
  }
}
