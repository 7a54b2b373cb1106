/**
 * Queue names are validated before they can reach SQL or AMQP: PGMQ builds
 * table names from them (`pgmq.q_<name>`, `pgmq.a_<name>`) and PostgreSQL
 * identifiers stop at 63 bytes, hence the 47-character limit.
 */
import { Brand, Effect, Result } from "effect"
import { InvalidQueueName } from "./MessagingError.ts"

export type QueueName = string & Brand.Brand<"@conveyor/core/QueueName">

export const maxLength = 47
const pattern = /^[a-z_][a-z0-9_]*$/

const problem = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.length > maxLength) return `must be at most ${maxLength} characters (got ${name.length})`
  if (!pattern.test(name)) return "must match ^[a-z_][a-z0-9_]*$ (lower-case letters, digits, underscores; not starting with a digit)"
  return undefined
}

const invalid = (name: string, why: string) =>
  new InvalidQueueName({ name, message: `Invalid queue name ${JSON.stringify(name)}: ${why}` })

export const validate = (name: string): Result.Result<QueueName, InvalidQueueName> => {
  const why = problem(name)
  return why === undefined ? Result.succeed(name as QueueName) : Result.fail(invalid(name, why))
}

export const make = (name: string): Effect.Effect<QueueName, InvalidQueueName> => Effect.fromResult(validate(name))

/** For names known at compile time; throws `InvalidQueueName` otherwise. */
export const makeUnsafe = (name: string): QueueName => {
  const why = problem(name)
  if (why !== undefined) throw invalid(name, why)
  return name as QueueName
}

export const is = (name: string): name is QueueName => problem(name) === undefined

/**
 * The dead-letter queue of `queue`: `<queue>_dlq`. It may run 4 characters past
 * `maxLength`, which still fits PostgreSQL's 63-byte identifiers.
 */
export const deadLetter = (queue: QueueName): QueueName => `${queue}_dlq` as QueueName
