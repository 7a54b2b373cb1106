/**
 * One live AMQP connection. `closed` completes (with the broker's reason)
 * when the connection goes away for any reason, and `alive` flips at that
 * very moment, so nobody opens a channel on a link known to be dead.
 */
import amqp from "amqplib"
import { Deferred, Duration, Effect, Redacted, Ref, Schedule } from "effect"
import { MessagingError } from "@conveyor/core"
import { provider } from "./errors.ts"

export interface LinkSettings {
  readonly url: Redacted.Redacted<string>
  readonly heartbeat: Duration.Duration
  readonly connectionName: string
  readonly reconnect: Schedule.Schedule<unknown, unknown>
}

export interface Link {
  readonly id: number
  readonly model: amqp.ChannelModel
  readonly closed: Deferred.Deferred<string>
  alive: boolean
  /** Holds this turn's frames (acks, publishes) back and sends them in one write at the next turn. */
  readonly coalesce: () => void
}

/** A socket that has not finished the AMQP handshake after this long is given up. */
const connectTimeoutMs = 10_000

let nextLinkId = 0

/** The URL without its password, for messages. */
export const describeUrl = (url: Redacted.Redacted<string>): string => {
  try {
    const parsed = new URL(Redacted.value(url))
    parsed.password = ""
    parsed.search = ""
    return parsed.toString()
  } catch {
    return "<unparseable RabbitMQ URL>"
  }
}

const passwordOf = (url: Redacted.Redacted<string>): string => {
  try {
    return decodeURIComponent(new URL(Redacted.value(url)).password)
  } catch {
    return ""
  }
}

/** Wrong credentials, a bad vhost or a malformed URL will not fix themselves. */
const isPermanent = (cause: unknown): boolean => {
  const text = cause instanceof Error ? cause.message : String(cause)
  return cause instanceof TypeError || /ACCESS.REFUSED|NOT.ALLOWED|Invalid URL|Expected amqp/.test(text)
}

const withHeartbeat = (url: string, heartbeat: Duration.Duration): string => {
  const parsed = new URL(url)
  parsed.searchParams.set("heartbeat", String(Math.max(1, Math.round(Duration.toSeconds(heartbeat)))))
  return parsed.toString()
}

/**
 * With noDelay every frame amqplib writes is its own TCP segment; a burst of
 * acks made in one event-loop turn would cost the broker one packet each.
 * Corking the socket until the next turn (amqplib flushes its frames on
 * setImmediate, queued before ours) sends the burst as one write.
 */
const coalescer = (model: amqp.ChannelModel) => {
  const socket = (model.connection as unknown as { readonly stream?: { cork?: () => void; uncork?: () => void } }).stream
  if (socket?.cork === undefined || socket.uncork === undefined) return () => {}
  let corked = false
  const release = () => {
    corked = false
    socket.uncork!()
  }
  return () => {
    if (corked) return
    corked = true
    socket.cork!()
    // amqplib queues its flush (a setImmediate) from a nextTick after the write that
    // preceded this call; queueing ours from a later nextTick releases right after that flush.
    process.nextTick(() => setImmediate(release))
  }
}

const attach = (model: amqp.ChannelModel): Link => {
  const link: Link = {
    id: ++nextLinkId,
    model,
    closed: Deferred.makeUnsafe<string>(),
    alive: true,
    coalesce: coalescer(model)
  }
  // Without an "error" listener an EventEmitter throws; the close that follows carries the reason.
  model.on("error", () => {})
  model.on("close", (err?: Error) => {
    link.alive = false
    Deferred.doneUnsafe(link.closed, Effect.succeed(err?.message ?? "connection closed"))
  })
  return link
}

/**
 * Connects, retrying transient failures on `settings.reconnect`. The error
 * names the broker (without the password) and why it refused.
 */
export const open = (settings: LinkSettings): Effect.Effect<Link, MessagingError.ConnectionError> =>
  Effect.gen(function*() {
    const attempts = yield* Ref.make(0)
    // An attempt interrupted mid-handshake (the layer closing) closes what it opened late.
    const target = Effect.try({
      try: () => withHeartbeat(Redacted.value(settings.url), settings.heartbeat),
      catch: (cause) => cause
    })
    const once = Effect.flatMap(target, (url) =>
      Effect.callback<amqp.ChannelModel, unknown>((resume, signal) => {
        // noDelay: an ack (no reply) followed by a request would otherwise wait out Nagle + delayed ACK (~40 ms).
        amqp.connect(url, {
          clientProperties: { connection_name: settings.connectionName },
          timeout: connectTimeoutMs,
          noDelay: true
        })
          .then(
            (model) => signal.aborted ? void model.close().catch(() => undefined) : resume(Effect.succeed(model)),
            (cause) => resume(Effect.fail(cause))
          )
      })).pipe(Effect.ensuring(Ref.update(attempts, (n) => n + 1)))
    return yield* once.pipe(
      Effect.retry({ schedule: settings.reconnect, while: (cause) => !isPermanent(cause) }),
      Effect.map(attach),
      Effect.catch((cause) =>
        Effect.flatMap(Ref.get(attempts), (n) => {
          const password = passwordOf(settings.url)
          const raw = cause instanceof Error ? cause.message : String(cause)
          const reason = password === "" ? raw : raw.split(password).join("***")
          const hint = isPermanent(cause) ? " (check the credentials and vhost in the URL)" : ""
          return Effect.fail(
            new MessagingError.ConnectionError({
              provider,
              message: `Could not connect to RabbitMQ at ${describeUrl(settings.url)} after ${n} attempt${
                n === 1 ? "" : "s"
              }: ${reason}${hint}`
            })
          )
        })
      )
    )
  })

/** Closes quietly: after a broker-side close the promise rejects, which is fine. */
export const close = (link: Link): Effect.Effect<void> =>
  Effect.promise(() => link.model.close().catch(() => undefined))
