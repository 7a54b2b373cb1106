/**
 * The demo's typed payloads. Senders encode with the Schema; consumers decode,
 * and a payload that does not decode is a `DecodeError`, which `Consumer.run`
 * dead-letters instead of retrying.
 */
import { type Message, MessagingError } from "@conveyor/core"
import { Effect, Schema } from "effect"
import { stepNames } from "./Workflow.ts"

const StepName = Schema.Literals(stepNames)

/** A client asks the orchestrator to run one workflow. */
export const TaskRequest = Schema.Struct({
  workflowId: Schema.String,
  input: Schema.Number
})

/** The orchestrator hands a step to its namespace's workers, with its dependencies' outputs. */
export const StepDispatch = Schema.Struct({
  workflowId: Schema.String,
  step: StepName,
  input: Schema.Number,
  dependencies: Schema.Record(Schema.String, Schema.Number)
})

/** A worker reports a finished step to the orchestrator. */
export const StepResult = Schema.Struct({
  workflowId: Schema.String,
  step: StepName,
  output: Schema.Number
})

export const decode = <A>(schema: Schema.Codec<A, unknown>) => (message: Message.QueuedMessage) =>
  Schema.decodeUnknownEffect(schema)(message.payload).pipe(
    Effect.mapError((error) =>
      new MessagingError.DecodeError({
        queue: message.queue,
        messageId: message.id,
        message: `Message ${message.id} on ${message.queue} is not a valid payload: ${error.message}`
      })
    )
  )

export const encode = <A>(schema: Schema.Codec<A, unknown>) => (value: A): Effect.Effect<Message.Json> =>
  // The schemas above only hold JSON values, and a typed value always encodes.
  Effect.orDie(Schema.encodeEffect(schema)(value)) as Effect.Effect<Message.Json>
