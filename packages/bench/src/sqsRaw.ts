/**
 * The raw ceiling on SQS: the AWS SDK v3 client doing the least a correct
 * consumer can — `ceil(handlers / 10)` loops of long-poll `ReceiveMessage`
 * (WaitTimeSeconds 20, up to 10 messages), the batch's handlers run at once
 * (W3: each next hop sent with `SendMessage`, and stored, before anything is
 * deleted), then one `DeleteMessageBatch` of the batch. Sends: `SendMessage`;
 * batches: `SendMessageBatch` of 10, in parallel.
 *
 * The server is fauxqs, started in the measuring process on loopback (as the
 * SQS tests do: `buildApp` + `listen` on 127.0.0.1, never `startFauxqs`,
 * which binds 0.0.0.0): its CPU counts against Conveyor and raw alike.
 */
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient
} from "@aws-sdk/client-sqs"
import { Effect } from "effect"
import { buildApp } from "fauxqs"
import type { Connection, Hop, Pipe, Subject } from "./Pipe.ts"
import { tag } from "./Stats.ts"

/** An emulator on a free loopback port for the scope; its endpoint. */
export const emulator = Effect.acquireRelease(
  Effect.promise(async () => {
    const app = buildApp({ logger: false, host: "127.0.0.1" })
    await app.ready()
    const address = await app.listen({ host: "127.0.0.1", port: 0 })
    return { app, endpoint: `http://127.0.0.1:${new URL(address).port}` }
  }),
  ({ app }) =>
    Effect.promise(() => {
      const closing = app.close()
      app.server.closeAllConnections()
      return closing
    })
).pipe(Effect.map(({ endpoint }) => endpoint))

export const region = "us-east-1"
export const credentials = { accessKeyId: "bench", secretAccessKey: "bench-secret" }

const maxBatch = 10
const waitSeconds = 20

const send = (client: SQSClient, url: string, hop: Hop) =>
  client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(hop) }))

const sendBatch = async (client: SQSClient, url: string, hops: ReadonlyArray<Hop>) => {
  const chunks: Array<Promise<unknown>> = []
  for (let i = 0; i < hops.length; i += maxBatch) {
    const entries = hops.slice(i, i + maxBatch).map((hop, j) => ({ Id: String(j), MessageBody: JSON.stringify(hop) }))
    chunks.push(client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries })).then((reply) => {
      if ((reply.Failed ?? []).length > 0) throw new Error(`SendMessageBatch: ${reply.Failed!.length} failed`)
    }))
  }
  await Promise.all(chunks)
}

const consumer = (client: SQSClient, url: string) => (concurrency: number, step: (hop: Hop) => Hop | undefined, settled: () => void) =>
  Effect.gen(function*() {
    const loops = Math.ceil(concurrency / maxBatch)
    const batch = Math.ceil(concurrency / loops)
    const stop = new AbortController()
    const handle = async (messages: ReadonlyArray<Message>) => {
      const next: Array<Hop> = []
      for (const message of messages) {
        const hop = step(JSON.parse(message.Body!) as Hop)
        if (hop !== undefined) next.push(hop)
      }
      await Promise.all(next.map((hop) => send(client, url, hop)))
      const entries = messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle! }))
      const reply = await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries }))
      if ((reply.Failed ?? []).length > 0) throw new Error(`DeleteMessageBatch: ${reply.Failed!.length} failed`)
      for (let i = 0; i < messages.length; i++) settled()
    }
    const loop = async () => {
      while (!stop.signal.aborted) {
        const reply = await client.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: batch, WaitTimeSeconds: waitSeconds }),
          { abortSignal: stop.signal }
        ).catch((error: unknown) => {
          if (stop.signal.aborted) return undefined
          throw error
        })
        const messages = reply?.Messages ?? []
        if (messages.length > 0) await handle(messages)
      }
    }
    const running = Array.from({ length: loops }, loop)
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        // A long poll waits up to 20 s: aborting it ends the loop now.
        stop.abort()
        await Promise.allSettled(running)
      })
    )
  })

const pipeOn = (client: SQSClient, url: string): Pipe => ({
  send: (hop) => Effect.promise(() => send(client, url, hop)),
  sendBatch: (hops) => Effect.promise(() => sendBatch(client, url, hops)),
  consume: consumer(client, url)
})

export const subject: Subject = {
  name: "raw",
  role: "raw",
  config: "@aws-sdk/client-sqs; ceil(handlers / 10) loops of ReceiveMessage (wait 20 s, up to 10) + SendMessage per next hop (W3) + DeleteMessageBatch",
  connect: Effect.gen(function*() {
    const endpoint = yield* emulator
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new SQSClient({
          endpoint,
          region,
          credentials,
          requestHandler: { requestTimeout: (waitSeconds + 10) * 1000, httpAgent: { keepAlive: true, maxSockets: 256 } }
        })
      ),
      (c) => Effect.sync(() => c.destroy())
    )
    const connection: Connection = {
      open: (label) =>
        Effect.gen(function*() {
          const url = yield* Effect.acquireRelease(
            Effect.promise(() => client.send(new CreateQueueCommand({ QueueName: `bench_${tag()}_${label}_raw` }))).pipe(
              Effect.map((reply) => reply.QueueUrl!)
            ),
            (url) => Effect.promise(() => client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined))
          )
          return pipeOn(client, url)
        })
    }
    return connection
  })
}
