/**
 * Queue names are validated before they can reach SQL or AMQP: PGMQ builds
 * table names from them (`pgmq.q_<name>`, `pgmq.a_<name>`) and PostgreSQL
 * identifiers stop at 63 bytes, hence PGMQ's 47-character limit. Every queue
 * has a dead-letter queue `<name>_dlq`, which must fit that limit too, so a
 * queue `ensureQueue` creates is at most 43 characters; a name of 44–47 is
 * valid only as the dead-letter queue of one (`<name>_dlq`), so it can be read,
 * listed and settled like any queue but not ensured.
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

const tooLongToEnsure = (length: number) =>
  `must be at most ${maxLength} characters (got ${length}), so that its dead-letter queue ` +
  `(<name>${deadLetterSuffix}) fits PGMQ's ${pgmqMaxLength}-character limit`

const problem = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.length > pgmqMaxLength) return `must be at most ${pgmqMaxLength} characters (got ${name.length})`
  if (name.length > maxLength && !name.endsWith(deadLetterSuffix)) {
    return `${tooLongToEnsure(name.length)}; only a dead-letter queue (<name>${deadLetterSuffix}) may be longer`
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
 * Why a name is not valid, or `undefined`; the check remembers the last name it found valid, so
 * a stream of sends or settles to one queue checks the name once (a send runs per message).
 */
export const checker = (): (name: string) => InvalidQueueName | undefined => {
  let valid: string | undefined
  return (name) => {
    if (name === valid) return undefined
    const why = problem(name)
    if (why !== undefined) return invalid(name, why)
    valid = name
    return undefined
  }
}

/** For names known at compile time; throws `InvalidQueueName` otherwise. */
export const makeUnsafe = (name: string): QueueName => {
  const why = problem(name)
  if (why !== undefined) throw invalid(name, why)
  return name as QueueName
}

export const is = (name: string): name is QueueName => problem(name) === undefined

/**
 * The dead-letter queue of `queue`: `<queue>_dlq`. Of a queue that could be ensured it is
 * at most `pgmqMaxLength` characters and valid (a dead-letter queue of 44–47 characters included).
 */
export const deadLetter = (queue: QueueName): QueueName => `${queue}${deadLetterSuffix}` as QueueName

/**
 * What every provider's `ensureQueue` checks first: the queue and its dead-letter queue can
 * both exist, i.e. the name is at most `maxLength` (a 44–47-character dead-letter queue is
 * valid to read but has no room for a dead-letter queue of its own).
 */
export const ensurable = (queue: QueueName): Effect.Effect<QueueName, InvalidQueueName> =>
  queue.length > maxLength
    ? Effect.fail(invalid(queue, `${tooLongToEnsure(queue.length)}; a dead-letter queue this long cannot be ensured`))
    : Effect.succeed(queue)
