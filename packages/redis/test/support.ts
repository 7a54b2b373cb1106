/**
 * Shared by the Redis tests: the server URL (`REDIS_URL` overrides the local
 * default), layers with fast reconnects and a key prefix of their own (so a
 * run never sees another run's keys), and raw node-redis access for
 * arranging and inspecting what the provider must cope with.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Redacted, Schedule, type Scope } from "effect"
import { createClient } from "redis"
import { QueueName } from "@conveyor/core"
import { Redis } from "@conveyor/redis"

export const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

const suffix = () => Math.random().toString(36).slice(2, 10)

export const uniqueQueue = (prefix: string): QueueName.QueueName => QueueName.makeUnsafe(`t_${prefix}_${suffix()}`)

export const uniquePrefix = (name: string) => `conveyor-test:${name}:${suffix()}:`

/** Quick retries so fault tests do not wait on the production backoff. */
export const fastReconnect = Schedule.exponential("50 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 12 }))

export const layer = (options: Partial<Redis.RedisOptions> = {}) =>
  Redis.layer({ url: Redacted.make(url), prefix: uniquePrefix("redis"), reconnect: fastReconnect, ...options })

/** A raw node-redis client for arranging and inspecting, closed with the scope. */
export const raw = (target: string = url) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ url: target, socket: { reconnectStrategy: false } })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close().catch(() => undefined))
  )

/** Closes (server-side) the connections named `name`, only those blocked in `command` when given; returns how many. */
export const killConnections = (client: RawClient, name: string, command?: string) =>
  Effect.promise(async () => {
    const list = String(await client.sendCommand(["CLIENT", "LIST"]))
    const ids = list.split("\n").filter((line) =>
      line.includes(` name=${name} `) && (command === undefined || line.includes(` cmd=${command} `))
    ).map((line) => /^id=(\d+)/.exec(line)![1]!)
    for (const id of ids) await client.sendCommand(["CLIENT", "KILL", "ID", id])
    return ids.length
  })

/** What the tests need of a raw client. */
export interface RawClient {
  readonly sendCommand: (args: Array<string>) => Promise<unknown>
}

export interface PrivateServer {
  readonly url: string
  /** SIGKILL, then the same server (port, data directory) again: what it fsynced is all it has. */
  readonly crashAndRestart: Effect.Effect<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const answers = async (port: number) => {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 500 } })
  client.on("error", () => {})
  try {
    await client.connect()
    await client.ping()
    return true
  } catch {
    return false
  } finally {
    if (client.isOpen) client.destroy()
  }
}

/**
 * A redis-server of the test's own on a free loopback port, persisting every
 * write (`--appendonly yes --appendfsync always`) in a temporary directory,
 * so it can be crashed and restarted without touching the shared server
 * (which keeps nothing on disk). Stopped and removed with the scope.
 */
export const privateServer: Effect.Effect<PrivateServer, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "conveyor-redis-"))
    const port = await freePort()
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", dir]
    let child: ChildProcess.ChildProcess | undefined
    const start = async () => {
      child = ChildProcess.spawn("redis-server", args, { stdio: "ignore" })
      for (let i = 0; i < 200 && !(await answers(port)); i++) await new Promise((r) => setTimeout(r, 25))
    }
    const kill = () =>
      new Promise<void>((resolve) => {
        const running = child
        if (running === undefined || running.exitCode !== null) return resolve()
        running.once("exit", () => resolve())
        running.kill("SIGKILL")
      })
    await start()
    return { dir, port, start, kill }
  }),
  ({ dir, kill }) => Effect.promise(async () => {
    await kill()
    await Fs.rm(dir, { recursive: true, force: true })
  })
).pipe(Effect.map(({ kill, port, start }) => ({
  url: `redis://127.0.0.1:${port}`,
  crashAndRestart: Effect.promise(async () => {
    await kill()
    await start()
  })
})))
