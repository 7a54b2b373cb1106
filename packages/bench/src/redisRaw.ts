/**
 * The raw ceiling on Redis Streams: node-redis, one connection for commands
 * and a duplicate for the blocking read, a stream per queue with one consumer
 * group, doing the least a correct consumer can: `XREADGROUP … COUNT
 * <handlers> BLOCK 0`, the batch's handlers run at once (W3: the next hops
 * they asked for XADDed, and stored, before anything is acked), then one
 * pipelined `XACK` + `XDEL` of the batch's ids (an acked entry otherwise stays
 * in the stream). Sends: `XADD <q> * p <json>`; batches: pipelined XADDs.
 * Keys carry a prefix unique to the process and are deleted afterwards: the
 * shared server is used by tests too.
 */
import { Effect } from "effect"
import { createClient } from "redis"
import type { Connection, Hop, Pipe, Subject } from "./Pipe.ts"
import { tag } from "./Stats.ts"

export const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

type Client = ReturnType<typeof createClient>

const group = "g"

/** One XREADGROUP reply as node-redis 6 hands it over: `{ [stream]: [[id, [field, value, …]], …] }`. */
type ReadReply = Record<string, ReadonlyArray<[string, ReadonlyArray<string>]>> | null

const xadd = (client: Client, stream: string, hop: Hop) => client.sendCommand(["XADD", stream, "*", "p", JSON.stringify(hop)])

const connected = (client: Client) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (c) => Effect.promise(() => c.close().catch(() => undefined))
  )

const consumer = (client: Client, stream: string) => (concurrency: number, step: (hop: Hop) => Hop | undefined, settled: () => void) =>
  Effect.gen(function*() {
    const reader = yield* connected(client.duplicate())
    let stopped = false
    const loop = async () => {
      while (!stopped) {
        const reply = await (reader.sendCommand([
          "XREADGROUP", "GROUP", group, "c", "COUNT", String(concurrency), "BLOCK", "0", "STREAMS", stream, ">"
        ]) as Promise<ReadReply>).catch((error: unknown) => {
          if (stopped) return null
          throw error
        })
        const entries = reply?.[stream] ?? []
        if (entries.length === 0) continue
        const next: Array<Hop> = []
        for (const [, fields] of entries) {
          const hop = step(JSON.parse(fields[1]!) as Hop)
          if (hop !== undefined) next.push(hop)
        }
        if (next.length > 0) await Promise.all(next.map((hop) => xadd(client, stream, hop)))
        const ids = entries.map(([id]) => id)
        await Promise.all([client.sendCommand(["XACK", stream, group, ...ids]), client.sendCommand(["XDEL", stream, ...ids])])
        for (let i = 0; i < entries.length; i++) settled()
      }
    }
    const running = loop()
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        stopped = true
        // BLOCK 0 waits for ever: closing the reader's socket rejects the read, and the loop ends.
        reader.destroy()
        await running.catch(() => undefined)
      })
    )
  })

const pipeOn = (client: Client, stream: string): Pipe => ({
  send: (hop) => Effect.promise(() => xadd(client, stream, hop)),
  sendBatch: (hops) => Effect.promise(() => Promise.all(hops.map((hop) => xadd(client, stream, hop)))),
  consume: consumer(client, stream)
})

export const subject: Subject = {
  name: "raw",
  role: "raw",
  config: "node-redis, one connection + a duplicate blocking in XREADGROUP COUNT handlers BLOCK 0; per batch pipelined XADD (W3), then XACK + XDEL",
  connect: Effect.gen(function*() {
    const client = yield* connected(createClient({ url, socket: { noDelay: true } }))
    const prefix = `bench-raw:${tag()}:`
    const connection: Connection = {
      open: (label) =>
        Effect.gen(function*() {
          const stream = `${prefix}${label}`
          yield* Effect.acquireRelease(
            Effect.promise(() => client.sendCommand(["XGROUP", "CREATE", stream, group, "0", "MKSTREAM"])),
            () => Effect.promise(() => client.sendCommand(["DEL", stream]).catch(() => undefined))
          )
          return pipeOn(client, stream)
        })
    }
    return connection
  })
}
