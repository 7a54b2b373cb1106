import { Consumer, InMemory, Messaging, QueueName, TraceContext } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Tracer } from "effect"

const q = QueueName.makeUnsafe("traced")

describe("TraceContext", () => {
  it("formats and parses W3C traceparent", () => {
    const span = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", sampled: true }
    const headers = { traceparent: TraceContext.format(span) }
    assert.strictEqual(headers.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    const parsed = Option.getOrThrow(TraceContext.extract(headers))
    assert.deepInclude(parsed, span)
    for (const bad of ["", "00-xyz-00f067aa0ba902b7-01", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]) {
      assert.isTrue(Option.isNone(TraceContext.extract({ traceparent: bad })), bad)
    }
  })

  it.effect("a traced send carries its span across the queue; the handler continues the trace", () =>
    Effect.gen(function*() {
      const m = yield* Messaging.Messaging
      yield* m.ensureQueue(q)
      const producer = yield* Effect.withSpan(
        Effect.andThen(m.send(q, "traced"), Effect.currentSpan),
        "place-order"
      )
      yield* m.send(q, "untraced")
      const seen = yield* Deferred.make<ReadonlyArray<readonly [unknown, Option.Option<Tracer.AnySpan>]>>()
      const found: Array<readonly [unknown, Option.Option<Tracer.AnySpan>]> = []
      const fiber = yield* Consumer.run([q], (message) =>
        Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
          Effect.sync(() => {
            found.push([message.payload, span])
            if (found.length === 2) Deferred.doneUnsafe(seen, Effect.succeed(found))
          }))).pipe(Effect.forkChild)
      const handled = new Map(yield* Deferred.await(seen))
      yield* Fiber.interrupt(fiber)
      const processing = Option.getOrThrow(handled.get("traced")!)
      assert.strictEqual(processing.traceId, producer.traceId, "same trace on both sides of the queue")
      assert.isTrue(Option.isNone(handled.get("untraced")!), "an untraced message opens no span")
    }).pipe(Effect.provide(InMemory.layer())))

  it.effect("with a tracing backend installed, untraced operations are spanned too", () =>
    Effect.gen(function*() {
      const names: Array<string> = []
      const tracer = Tracer.make({
        span(options) {
          names.push(options.name)
          return Tracer.nativeTracer.span(options)
        }
      })
      const m = yield* Messaging.Messaging
      yield* m.ensureQueue(q)
      yield* m.send(q, "untraced").pipe(Effect.withTracer(tracer))
      yield* m.receive(q, { max: 1, visibilityTimeout: "30 seconds" }).pipe(Effect.withTracer(tracer))
      assert.deepStrictEqual(names, ["messaging.send", "messaging.receive"])
    }).pipe(Effect.provide(InMemory.layer())))
})
