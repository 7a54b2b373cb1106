/**
 * Conveyor's side of every comparison, the same for every provider: the
 * provider's `Messaging` layer, `send`/`sendBatch` to produce and
 * `Consumer.run` to consume, the handler sending its chain's next hop with
 * `send` (the workflow pattern). A message counts as settled when its ack
 * returns (observed by wrapping the service's `ack` and `ackAll`, through
 * which `Consumer.run` acks).
 */
import { Consumer, Messaging, QueueName } from "@conveyor/core"
import { Context, Effect, Layer } from "effect"
import type { Hop, Pipe, Subject } from "./Pipe.ts"
import { tag } from "./Stats.ts"

export interface Options {
  readonly layer: Layer.Layer<Messaging.Messaging, unknown>
  readonly config: string
  /** `Consumer.run` options for `concurrency` handlers (default: only `concurrency`). */
  readonly runOptions?: (concurrency: number) => Consumer.RunOptions
}

const pipe = (
  messaging: Messaging.Messaging["Service"],
  queue: QueueName.QueueName,
  runOptions: (concurrency: number) => Consumer.RunOptions
): Pipe => ({
  send: (hop) => messaging.send(queue, hop),
  sendBatch: (hops) => messaging.sendBatch(queue, hops),
  consume: (concurrency, step, settled) => {
    const observed: Messaging.Messaging["Service"] = {
      ...messaging,
      ack: (receipt) => Effect.tap(messaging.ack(receipt), () => Effect.sync(settled)),
      ackAll: (receipts) =>
        Effect.tap(messaging.ackAll(receipts), (exits) => Effect.sync(() => exits.forEach((exit) => exit._tag === "Success" && settled())))
    }
    const handler = (message: { readonly payload: unknown }) => {
      const next = step(message.payload as Hop)
      return next === undefined ? Effect.void : Effect.asVoid(messaging.send(queue, next))
    }
    return Consumer.run([queue], handler, runOptions(concurrency)).pipe(
      Effect.provideService(Messaging.Messaging, observed),
      Effect.forkScoped,
      Effect.asVoid
    )
  }
})

export const subject = (options: Options): Subject => ({
  name: "conveyor",
  role: "conveyor",
  config: options.config,
  connect: Effect.gen(function*() {
    const messaging = Context.get(yield* Layer.build(options.layer), Messaging.Messaging)
    const runOptions = options.runOptions ?? ((concurrency) => ({ concurrency }))
    return {
      open: (label) =>
        Effect.gen(function*() {
          // `<x>_queue`: a notify namespace of its own on PGMQ, so no other queue's notifications reach it.
          const queue = QueueName.makeUnsafe(`bench_${tag()}_${label}_queue`)
          yield* Effect.acquireRelease(messaging.ensureQueue(queue), () => Effect.ignore(messaging.deleteQueue(queue)))
          return pipe(messaging, queue, runOptions)
        })
    }
  })
})
