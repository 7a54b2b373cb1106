/**
 * W3C trace context carried in message headers (`traceparent`), so a trace
 * crosses the queue: a send made inside a traced operation records its span
 * in the message, and `Consumer.run` continues that trace in the handler's
 * span. Untraced sends carry nothing and their consumers open no span.
 */
import { Option, Tracer } from "effect"
import type { Headers } from "./Message.ts"

export const header = "traceparent"

const pattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export const format = (span: { readonly traceId: string; readonly spanId: string; readonly sampled: boolean }): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

export const inject = (headers: Headers | undefined, span: Tracer.AnySpan): Headers => ({
  ...headers,
  [header]: format(span)
})

/** The producer's span, when the message carries a well-formed `traceparent`. */
export const extract = (headers: Headers): Option.Option<Tracer.ExternalSpan> => {
  const value = headers[header]
  const match = value === undefined ? null : pattern.exec(value)
  return match === null
    ? Option.none()
    : Option.some(Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (parseInt(match[3]!, 16) & 1) === 1 }))
}
