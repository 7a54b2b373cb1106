/**
 * Queue names are validated before they can reach SQL or AMQP: PGMQ builds
 * table names from them (`pgmq.q_<name>`, `pgmq.a_<name>`) and PostgreSQL
 * identifiers stop at 63 bytes, hence PGMQ's 47-character limit. Every queue
 * has a dead-letter queue `<name>_dlq`, which must fit that limit too, so a
 * name is at most 43 characters.
 */
import { Brand, Effect, Result } from "effect"
import { InvalidQueueName } from "./MessagingError.ts"

export type QueueName = string & Brand.Brand<"@conveyor/core/QueueName">

/** PGMQ's limit on a queue name (its tables and indexes are named after it). */
export const pgmqMaxLength = 47

const deadLetterSuffix = "_dlq"

/** The longest name whose dead-letter queue (`<name>_dlq`) still fits `pgmqMaxLength`. */
export const maxLength = pgmqMaxLength - deadLetterSuffix.length

const pattern = /^[a-z_][a-z0-9_]*$/

const problem = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.length > maxLength) {
    return `must be at most ${maxLength} characters (got ${name.length}), so that its dead-letter queue ` +
      `(<name>${deadLetterSuffix}) fits PGMQ's ${pgmqMaxLength}-character limit`
  }
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

/**
 * A queue name, or the dead-letter queue of one (which runs up to 4 characters past
 * `maxLength`): what a receipt may name, since messages are received from dead-letter queues
 * too. Still only the characters of `validate`, at most `pgmqMaxLength`.
 */
export const validateQueueOrDeadLetter = (name: string): Result.Result<QueueName, InvalidQueueName> =>
  name.endsWith(deadLetterSuffix) && problem(name) !== undefined && problem(name.slice(0, -deadLetterSuffix.length)) === undefined
    ? Result.succeed(name as QueueName)
    : validate(name)

/** For names known at compile time; throws `InvalidQueueName` otherwise. */
export const makeUnsafe = (name: string): QueueName => {
  const why = problem(name)
  if (why !== undefined) throw invalid(name, why)
  return name as QueueName
}

export const is = (name: string): name is QueueName => problem(name) === undefined

/**
 * The dead-letter queue of `queue`: `<queue>_dlq`, at most `pgmqMaxLength`
 * characters. Built from a valid name, it needs no validation; past
 * `maxLength` (from a name of 40–43 characters) `is` refuses it, since it
 * could not have a dead-letter queue of its own.
 */
export const deadLetter = (queue: QueueName): QueueName => `${queue}${deadLetterSuffix}` as QueueName
