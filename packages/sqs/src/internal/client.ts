/**
 * The one SQS client of a layer, closed with the layer's scope, and the way
 * every SDK call is made: interruptible (interruption aborts the HTTP request)
 * and with its failure mapped to a Messaging error.
 */
import { SQSClient } from "@aws-sdk/client-sqs"
import { Effect, Redacted, type Scope } from "effect"
import type { MessagingError } from "@conveyor/core"
import { fromSdk } from "./errors.ts"

export interface Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: Redacted.Redacted<string>
  readonly sessionToken?: Redacted.Redacted<string> | undefined
}

export interface ClientOptions {
  readonly endpoint?: string | undefined
  readonly region: string
  readonly credentials?: Credentials | undefined
  /** The longest a request may take: a long poll's wait plus headroom. */
  readonly requestTimeoutMs: number
  readonly maxSockets: number
}

export const make = (options: ClientOptions): Effect.Effect<SQSClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new SQSClient({
        region: options.region,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.credentials === undefined ? {} : {
          // Unwrapped only here, inside the SDK's signer input; never logged.
          credentials: {
            accessKeyId: options.credentials.accessKeyId,
            secretAccessKey: Redacted.value(options.credentials.secretAccessKey),
            ...(options.credentials.sessionToken === undefined
              ? {}
              : { sessionToken: Redacted.value(options.credentials.sessionToken) })
          }
        }),
        requestHandler: {
          requestTimeout: options.requestTimeoutMs,
          connectionTimeout: 5_000,
          httpAgent: { keepAlive: true, maxSockets: options.maxSockets },
          httpsAgent: { keepAlive: true, maxSockets: options.maxSockets }
        }
      })
    ),
    (client) => Effect.sync(() => client.destroy())
  )

/** One SDK call; `queue` names the queue a `QueueDoesNotExist` refers to. */
export const call = <A>(
  operation: string,
  queue: string | undefined,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, MessagingError.MessagingError> =>
  Effect.tryPromise({ try: f, catch: fromSdk(operation, queue) })
