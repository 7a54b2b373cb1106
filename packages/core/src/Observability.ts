/**
 * Spans and metrics shared by every provider (OpenTelemetry messaging
 * conventions), so each provider is instrumented once, the same way:
 * providers build their raw service and pass it through `instrument`.
 */
import { Context, Effect, Exit, type Fiber, Metric, Option, Stream, Tracer } from "effect"
import type { MessageId, QueuedMessage } from "./Message.ts"
import type { Messaging, SendOptions } from "./Messaging.ts"
import * as TraceContext from "./TraceContext.ts"
import type { QueueName } from "./QueueName.ts"

export const messagesSent = Metric.counter("messaging.messages.sent", {
  description: "Messages accepted by the provider",
  incremental: true
})
/**
 * Attribute `path`: `push` (delivered by subscription, or claimed by id with `fetch`, which
 * follows an announcement) or `poll` (claimed by `receive`).
 */
export const messagesReceived = Metric.counter("messaging.messages.received", {
  description: "Messages handed to consumers",
  incremental: true
})
export const messagesAcked = Metric.counter("messaging.messages.acked", { incremental: true })
export const messagesNacked = Metric.counter("messaging.messages.nacked", { incremental: true })
export const messagesDeadLettered = Metric.counter("messaging.messages.dead_lettered", { incremental: true })
export const deliveryLatency = Metric.histogram("messaging.delivery.latency", {
  description: "Enqueue to handler start, milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 0.25, factor: 2, count: 16 })
})
export const handlerDuration = Metric.histogram("messaging.handler.duration", {
  description: "Handler run time, milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 0.25, factor: 2, count: 16 })
})
export const queueDepth = Metric.gauge("messaging.queue.depth")

const receivedByPath = {
  push: Metric.withAttributes(messagesReceived, { path: "push" }),
  poll: Metric.withAttributes(messagesReceived, { path: "poll" })
}
export const receivedOn = (path: "push" | "poll") => receivedByPath[path]

const attributes = (system: string, operation: string, queue?: QueueName) => ({
  "messaging.system": system,
  "messaging.operation": operation,
  ...(queue === undefined ? {} : { "messaging.destination.name": queue })
})

/**
 * Whether a span made now could be seen: a tracing backend is installed, or the caller is
 * traced (the span joins its trace and travels in a sent message's `traceparent`). Effect's
 * native tracer exports nothing, so an untraced operation without a backend makes no span —
 * a span costs microseconds, and a handler's `send` runs once per message.
 */
const observable = (fiber: Fiber.Fiber<unknown, unknown>) =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer || Context.getOrUndefined(fiber.context, Tracer.ParentSpan) !== undefined

/** The span is only made, its attributes too, where it could be seen. */
const spanned = <A, E, R>(effect: Effect.Effect<A, E, R>, system: string, operation: string, queue?: QueueName) =>
  Effect.withSpan(effect, `messaging.${operation}`, {
    attributes: attributes(system, operation, queue),
    captureStackTrace: false
  })

const span = (system: string, operation: string, queue?: QueueName) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => observable(fiber) ? spanned(effect, system, operation, queue) : effect)

/**
 * The send options with the send span recorded in the headers, when the caller
 * is traced (the send span has a parent); untraced sends are left alone. Read
 * from the context rather than with `Effect.currentSpan`, whose failure when
 * there is no span builds an error (a stack trace) on every untraced send.
 */
const traced = (options: SendOptions | undefined) =>
  Effect.withFiber((fiber) => {
    const current = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
    return Effect.succeed(
      current?._tag === "Span" && Option.isSome(current.parent)
        ? { ...options, headers: TraceContext.inject(options?.headers, current) }
        : options
    )
  })

/**
 * Runs `handle` in a span that continues the producer's trace, when the message carries one.
 * Without a `traceparent` it is `handle` itself: no span, nothing allocated (this runs per message).
 */
export const withProcessSpan = <A, E, R>(
  system: string,
  message: QueuedMessage,
  handle: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  if (message.headers[TraceContext.header] === undefined) return handle
  const parent = TraceContext.extract(message.headers)
  return Option.isNone(parent) ? handle : handle.pipe(
    Effect.withSpan("messaging.process", {
      attributes: { ...attributes(system, "process", message.queue), "messaging.message.id": message.id },
      parent: parent.value,
      kind: "consumer"
    }, { captureStackTrace: false })
  )
}

/** One ack counted: a single effect shared by every ack, so counting one allocates nothing. */
const countAck = Effect.withFiber((fiber) => {
  messagesAcked.updateUnsafe(1, fiber.context)
  return Effect.void
})

/** Wraps every operation of a provider's service in a span and counts what moved. */
export const instrument = (service: Messaging["Service"]): Messaging["Service"] => {
  const system = service.provider
  return {
    ...service,
    ensureQueue: (queue, options) => service.ensureQueue(queue, options).pipe(span(system, "create", queue)),
    deleteQueue: (queue) => service.deleteQueue(queue).pipe(span(system, "delete_queue", queue)),
    queueExists: (queue) => service.queueExists(queue).pipe(span(system, "queue_exists", queue)),
    listQueues: service.listQueues.pipe(span(system, "list_queues")),
    purgeQueue: (queue) => service.purgeQueue(queue).pipe(span(system, "purge", queue)),
    // A send nobody could see (no parent span, so no trace to carry either) is one step: it runs
    // once per message of a workflow, and W1 waits on it. It is counted in the fiber that sent it.
    send: (queue, payload, options) =>
      Effect.withFiber((fiber) => {
        const counted = (id: MessageId) => {
          messagesSent.updateUnsafe(1, fiber.context)
          return id
        }
        return observable(fiber)
          ? spanned(
            Effect.flatMap(traced(options), (traced) => Effect.map(service.send(queue, payload, traced), counted)),
            system,
            "send",
            queue
          )
          : Effect.map(service.send(queue, payload, options), counted)
      }),
    sendBatch: (queue, payloads, options) =>
      Effect.flatMap(traced(options), (traced) => service.sendBatch(queue, payloads, traced)).pipe(
        Effect.tap((ids) => Metric.update(messagesSent, ids.length)),
        span(system, "send", queue)
      ),
    receive: (queue, options) =>
      service.receive(queue, options).pipe(
        Effect.tap((messages) => Metric.update(receivedOn("poll"), messages.length)),
        span(system, "receive", queue)
      ),
    fetch: (queue, id, options) =>
      service.fetch(queue, id, options).pipe(
        Effect.tap((message) => message._tag === "Some" ? Metric.update(receivedOn("push"), 1) : Effect.void),
        span(system, "receive", queue)
      ),
    // No span on ack: a span costs 2-4 µs in Effect 4.1, which halved in-memory throughput
    // through Consumer.run; acks are counted, and run inside the caller's span.
    ack: (receipt) => Effect.andThen(service.ack(receipt), countAck),
    ackAll: (receipts) =>
      Effect.tap(service.ackAll(receipts), (exits) => {
        const acked = exits.filter(Exit.isSuccess).length
        return acked === 0 ? Effect.void : Metric.update(messagesAcked, acked)
      }),
    nack: (receipt, options) =>
      service.nack(receipt, options).pipe(
        Effect.tap(() => Metric.update(options?.requeue === false ? messagesDeadLettered : messagesNacked, 1)),
        span(system, "nack", receipt.queue)
      ),
    extendVisibility: (receipt, duration) =>
      service.extendVisibility(receipt, duration).pipe(span(system, "extend_visibility", receipt.queue)),
    stats: (queue) =>
      service.stats(queue).pipe(
        Effect.tap((stats) => Metric.update(Metric.withAttributes(queueDepth, { queue }), stats.depth)),
        span(system, "stats", queue)
      ),
    subscribe: (queues, options) =>
      service.subscribe(queues, options).pipe(
        Stream.mapArrayEffect((notifications) => {
          let delivered = 0
          for (const n of notifications) if (n._tag === "Message") delivered++
          return Effect.as(Metric.update(receivedOn("push"), delivered), notifications)
        })
      )
  }
}
