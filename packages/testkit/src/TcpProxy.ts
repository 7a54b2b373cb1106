/**
 * A TCP proxy in front of a server that a fault test can take down (cutting
 * every connection and refusing new ones) and bring back on the same port:
 * an outage as the client sees it, without touching the server other suites
 * share.
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"

export interface TcpProxy {
  /** `target` with its host and port replaced by the proxy's. */
  readonly url: string
  readonly down: Effect.Effect<void>
  readonly up: Effect.Effect<void>
}

const defaultPorts: Record<string, number> = { "postgres:": 5432, "postgresql:": 5432, "amqp:": 5672 }

/** Starts a proxy to the server of `target` (a URL); it closes with the scope. */
export const make = (target: string): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const upstreamUrl = new URL(target)
      const upstreamPort = Number(upstreamUrl.port || defaultPorts[upstreamUrl.protocol])
      const sockets = new Set<Net.Socket>()
      let server: Net.Server | undefined
      let port = 0
      const up = () =>
        new Promise<void>((resolve, reject) => {
          const listening = Net.createServer((client) => {
            const upstream = Net.connect(upstreamPort, upstreamUrl.hostname)
            sockets.add(client).add(upstream)
            const drop = () => {
              client.destroy()
              upstream.destroy()
              sockets.delete(client)
              sockets.delete(upstream)
            }
            client.on("error", drop).on("close", drop)
            upstream.on("error", drop).on("close", drop)
            client.pipe(upstream).pipe(client)
          })
          listening.on("error", reject)
          listening.listen(port, "127.0.0.1", () => {
            server = listening
            port = (listening.address() as Net.AddressInfo).port
            resolve()
          })
        })
      const down = () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          sockets.clear()
          const closing = server
          server = undefined
          closing === undefined ? resolve() : closing.close(() => resolve())
        })
      await up()
      const proxied = new URL(target)
      proxied.hostname = "127.0.0.1"
      proxied.port = String(port)
      return { url: proxied.toString(), up: Effect.promise(up), down: Effect.promise(down), close: down }
    }),
    (proxy) => Effect.promise(proxy.close)
  ).pipe(Effect.map(({ down, up, url }): TcpProxy => ({ url, up, down })))
