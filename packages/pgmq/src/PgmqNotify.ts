/**
 * The notification triggers (the tasker-pgmq design, wire-compatible with it).
 *
 * - A statement-level trigger on every `pgmq.q_<name>` sends one notification
 *   per INSERT statement on `pgmq_message_ready.<namespace>` and on the
 *   global `pgmq_message_ready`: `message_with_payload` (one row, visible now,
 *   whole notification within the byte limit), `message_ready` (one row,
 *   delayed or too large) or `batch_ready` (several rows; the id list is cut,
 *   never the JSON, to fit). A delayed message is announced with its
 *   `ready_at`, never as ready now; `ready_at` is the latest `vt` of the
 *   statement's rows rounded up to the millisecond, so it is never earlier.
 * - A row trigger on `pgmq.meta` sends `queue_created` and attaches the
 *   message trigger to the new queue's table, so queues created later, by
 *   any client (PGMQ's own `create` inserts into meta last), notify too.
 *
 * Works on top of the real extension as on Conveyor's own schema. The
 * configuration is compiled into the function bodies; changing it means
 * re-installing (`PgmqInstaller` does so when the recorded config differs).
 */
import * as NotifyConfig from "./PgmqNotifyConfig.ts"

/** Bumped whenever the generated SQL changes; recorded in `pgmq.conveyor_version`. */
export const version = 3

export const triggerName = "conveyor_notify"

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

const namespaceFunction = (config: NotifyConfig.NotifyConfig) => {
  const body = config.queuePattern === undefined
    ? `SELECT CASE
    WHEN queue_name LIKE 'orchestration%' THEN 'orchestration'
    WHEN queue_name ~ '^worker_.+_queue$' THEN substring(queue_name FROM '^worker_(.+)_queue$')
    WHEN queue_name ~ '^.+_queue$' THEN substring(queue_name FROM '^(.+)_queue$')
    ELSE 'default'
  END`
    : (() => {
      const { group, regex } = NotifyConfig.sqlPattern(config.queuePattern)
      return `SELECT coalesce((regexp_match(queue_name, ${literal(regex)}))[${group}], 'default')`
    })()
  return `CREATE OR REPLACE FUNCTION pgmq.conveyor_queue_namespace(queue_name text)
RETURNS text LANGUAGE sql IMMUTABLE AS $fn$
  ${body}
$fn$`
}

const messageReadyFunction = (config: NotifyConfig.NotifyConfig) =>
  `CREATE OR REPLACE FUNCTION pgmq.conveyor_notify_message_ready()
RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  queue text := substr(TG_TABLE_NAME, 3);
  ns text := pgmq.conveyor_queue_namespace(substr(TG_TABLE_NAME, 3));
  global_channel constant text := ${literal(NotifyConfig.globalChannel(config))};
  ns_channel text;
  max_bytes constant integer := ${config.notifyMaxBytes};
  row_count bigint;
  first_id bigint;
  ready timestamptz;
  ready_at timestamptz;
  delay integer;
  ids bigint[];
  msg jsonb;
  payload text;
BEGIN
  SELECT count(*), min(r.msg_id), max(r.vt) INTO row_count, first_id, ready FROM conveyor_new_rows r;
  IF row_count = 0 THEN
    RETURN NULL;
  END IF;
  delay := greatest(0, ceil(extract(epoch FROM ready - clock_timestamp())))::integer;
  -- Announced rounded up to the millisecond: readers keep milliseconds, and a wake-up at the
  -- truncated time would find the row not yet visible.
  ready_at := date_trunc('milliseconds', ready);
  IF ready_at < ready THEN
    ready_at := ready_at + interval '1 millisecond';
  END IF;
  IF row_count = 1 THEN
    IF ready <= clock_timestamp() THEN
      SELECT r.message INTO msg FROM conveyor_new_rows r;
      payload := jsonb_build_object(
        'event_type', 'message_with_payload', 'msg_id', first_id, 'queue_name', queue,
        'namespace', ns, 'message', msg, 'ready_at', ready_at, 'delay_seconds', 0)::text;
      IF octet_length(payload) > max_bytes THEN
        payload := NULL;
      END IF;
    END IF;
    IF payload IS NULL THEN
      payload := jsonb_build_object(
        'event_type', 'message_ready', 'msg_id', first_id, 'queue_name', queue, 'namespace', ns,
        'ready_at', ready_at, 'delay_seconds', delay, 'payload_omitted', true)::text;
    END IF;
  ELSE
    SELECT array_agg(r.msg_id ORDER BY r.msg_id) INTO ids FROM conveyor_new_rows r;
    LOOP
      payload := jsonb_build_object(
        'event_type', 'batch_ready', 'msg_ids', to_jsonb(ids), 'queue_name', queue, 'namespace', ns,
        'message_count', row_count, 'ready_at', ready_at, 'delay_seconds', delay)::text;
      EXIT WHEN octet_length(payload) <= max_bytes OR cardinality(ids) = 0;
      ids := ids[1:cardinality(ids) / 2];
    END LOOP;
  END IF;
  ns_channel := global_channel || '.' || ns;
  IF octet_length(ns_channel) <= ${NotifyConfig.maxChannelBytes} THEN
    PERFORM pg_notify(ns_channel, payload);
  END IF;
  PERFORM pg_notify(global_channel, payload);
  RETURN NULL;
END
$fn$`

const attach = (table: string) =>
  `format('CREATE OR REPLACE TRIGGER ${triggerName} AFTER INSERT ON pgmq.%I REFERENCING NEW TABLE AS conveyor_new_rows FOR EACH STATEMENT EXECUTE FUNCTION pgmq.conveyor_notify_message_ready()', ${table})`

const queueCreatedFunction = (config: NotifyConfig.NotifyConfig) =>
  `CREATE OR REPLACE FUNCTION pgmq.conveyor_on_queue_created()
RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  qtable text := lower('q_' || NEW.queue_name);
BEGIN
  IF to_regclass(format('pgmq.%I', qtable)) IS NOT NULL THEN
    EXECUTE ${attach("qtable")};
  END IF;
  PERFORM pg_notify(${literal(NotifyConfig.queueCreatedChannel(config))}, jsonb_build_object(
    'event_type', 'queue_created', 'queue_name', NEW.queue_name,
    'namespace', pgmq.conveyor_queue_namespace(NEW.queue_name), 'created_at', NEW.created_at)::text);
  RETURN NEW;
END
$fn$`

/** A DO block that executes `statement` (SQL text that may use `qtable`) for every existing queue table. */
const forEachQueueTable = (statement: string) => `DO $do$
DECLARE
  qtable text;
BEGIN
  FOR qtable IN SELECT lower('q_' || m.queue_name) FROM pgmq.meta m LOOP
    IF to_regclass(format('pgmq.%I', qtable)) IS NOT NULL THEN
      EXECUTE ${statement};
    END IF;
  END LOOP;
END
$do$`

/** Applied in order; idempotent. Requires `pgmq.meta` (extension or Conveyor schema). */
export const statements = (config: NotifyConfig.NotifyConfig): ReadonlyArray<string> => [
  namespaceFunction(config),
  messageReadyFunction(config),
  queueCreatedFunction(config),
  `CREATE OR REPLACE TRIGGER conveyor_queue_created AFTER INSERT ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION pgmq.conveyor_on_queue_created()`,
  forEachQueueTable(attach("qtable"))
]

/** Undoes `statements`: the queues stay, they just stop notifying. */
export const rollback: ReadonlyArray<string> = [
  forEachQueueTable(`format('DROP TRIGGER IF EXISTS ${triggerName} ON pgmq.%I', qtable)`),
  `DROP TRIGGER IF EXISTS conveyor_queue_created ON pgmq.meta`,
  `DROP FUNCTION IF EXISTS pgmq.conveyor_on_queue_created()`,
  `DROP FUNCTION IF EXISTS pgmq.conveyor_notify_message_ready()`,
  `DROP FUNCTION IF EXISTS pgmq.conveyor_queue_namespace(text)`
]
