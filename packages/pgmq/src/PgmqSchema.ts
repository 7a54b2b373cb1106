/**
 * A PGMQ-compatible schema, written for Conveyor, for databases without the
 * `pgmq` extension: schema `pgmq`, table `pgmq.meta`, per-queue tables
 * `pgmq.q_<name>` / `pgmq.a_<name>` with PGMQ's columns and indexes, and the
 * functions of pgmq 1.11's core API with its signatures, behaviour and error
 * texts (queue DDL here, messages in `internal/schemaMessages.ts`), so other
 * PGMQ clients work against it unchanged.
 *
 * Every statement is a single SQL statement (the extended protocol runs one at
 * a time); `statements` is applied in order inside one transaction by
 * `PgmqInstaller`. Queue names are checked as pgmq checks them (no `$`, `;`,
 * `--` or `'`; at most 47 characters on create), by errors of fixed text that
 * never repeat the name, and every identifier built from one is formatted
 * with `%I`.
 */
import * as Messages from "./internal/schemaMessages.ts"

/** Bumped whenever `statements` changes; recorded in `pgmq.conveyor_version`. */
export const version = 3

/**
 * The advisory lock every schema change takes: installs, and creating or
 * dropping a queue from any client. Replacing the notify function while
 * another session attaches it to a new queue's table, or two sessions
 * creating and dropping queues, otherwise deadlock in PostgreSQL.
 */
export const lockKey = 0x636f6e76 // "conv"

/** pgmq's limit: `archived_at_idx_<name>` (16 + 47) must fit PostgreSQL's 63-byte identifiers. */
const maxQueueNameLength = 47

/** Records which Conveyor components are installed, and with what configuration. */
export const versionTable = `CREATE TABLE IF NOT EXISTS pgmq.conveyor_version (
  component text PRIMARY KEY,
  version integer NOT NULL,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  installed_at timestamptz NOT NULL DEFAULT now()
)`

const createType = (name: string, fields: string) =>
  `DO $do$
BEGIN
  IF to_regtype('pgmq.${name}') IS NULL THEN
    CREATE TYPE pgmq.${name} AS (${fields});
  END IF;
END
$do$`

const queueFunctions = [
  // The one place identifiers are derived from queue names: pgmq's rule, pgmq's text.
  `CREATE OR REPLACE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
  IF format_table_name.queue_name ~ '\\$|;|--|''' THEN
    RAISE EXCEPTION 'queue name contains invalid characters: $, ;, --, or \\''';
  END IF;
  RETURN lower(format_table_name.prefix || '_' || format_table_name.queue_name);
END
$fn$`,

  // A longer name would be cut to 63 bytes in some identifier and collide with another
  // queue's. pgmq counts characters; bytes are counted too, so multi-byte names fit as well.
  `CREATE OR REPLACE FUNCTION pgmq.validate_queue_name(queue_name text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  IF length(validate_queue_name.queue_name) > ${maxQueueNameLength} THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is ${maxQueueNameLength} characters';
  END IF;
  IF octet_length(validate_queue_name.queue_name) > ${maxQueueNameLength} THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is ${maxQueueNameLength} bytes';
  END IF;
END
$fn$`,

  // As pgmq's: the tables are named in lower case, meta keeps the name as given.
  `CREATE OR REPLACE FUNCTION pgmq."create"(queue_name text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  qtable text := pgmq.format_table_name("create".queue_name, 'q');
  atable text := pgmq.format_table_name("create".queue_name, 'a');
BEGIN
  PERFORM pgmq.validate_queue_name("create".queue_name);
  -- Queue DDL and installs serialize (see lockKey): they deadlock otherwise.
  PERFORM pg_advisory_xact_lock(${lockKey});
  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS pgmq.%I (
       msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
       read_ct integer NOT NULL DEFAULT 0,
       enqueued_at timestamptz NOT NULL DEFAULT now(),
       last_read_at timestamptz,
       vt timestamptz NOT NULL,
       message jsonb,
       headers jsonb)', qtable);
  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS pgmq.%I (
       msg_id bigint PRIMARY KEY,
       read_ct integer NOT NULL DEFAULT 0,
       enqueued_at timestamptz NOT NULL DEFAULT now(),
       last_read_at timestamptz,
       archived_at timestamptz NOT NULL DEFAULT now(),
       vt timestamptz NOT NULL,
       message jsonb,
       headers jsonb)', atable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
    'archived_at_idx_' || "create".queue_name, atable);
  -- Last, as PGMQ does: a trigger on meta may rely on the tables existing.
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES ("create".queue_name, false, false)
  ON CONFLICT DO NOTHING;
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.drop_queue(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(drop_queue.queue_name, 'q');
  atable text := pgmq.format_table_name(drop_queue.queue_name, 'a');
BEGIN
  PERFORM pg_advisory_xact_lock(${lockKey});
  IF to_regclass(format('pgmq.%I', qtable)) IS NULL THEN
    RAISE NOTICE 'pgmq queue \`%\` does not exist', drop_queue.queue_name;
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', qtable);
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', atable);
  DELETE FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name;
  RETURN true;
END
$fn$`,
  // Deprecated upstream, kept for the clients that still call it; true whatever happened.
  `CREATE OR REPLACE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean)
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pgmq.format_table_name(drop_queue.queue_name, 'q');
  RAISE WARNING 'drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead';
  PERFORM pgmq.drop_queue(drop_queue.queue_name);
  RETURN true;
END
$fn$`,

  // pgmq counts, then truncates: one DELETE counts exactly what it removed, and blocks no reader.
  `CREATE OR REPLACE FUNCTION pgmq.purge_queue(queue_name text)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  deleted bigint;
BEGIN
  EXECUTE format('DELETE FROM pgmq.%I', pgmq.format_table_name(purge_queue.queue_name, 'q'));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record LANGUAGE sql STABLE AS $fn$
  SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at FROM pgmq.meta m ORDER BY m.queue_name
$fn$`,

  // queue_name is the name as given; visible means vt <= now(), as pgmq counts them.
  `CREATE OR REPLACE FUNCTION pgmq.metrics(queue_name text)
RETURNS pgmq.metrics_result LANGUAGE plpgsql AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(metrics.queue_name, 'q');
  result pgmq.metrics_result;
BEGIN
  EXECUTE format(
    'SELECT $1,
            count(*)::bigint,
            extract(epoch FROM (now() - max(enqueued_at)))::integer,
            extract(epoch FROM (now() - min(enqueued_at)))::integer,
            (SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM %s s),
            now(),
            (count(*) FILTER (WHERE vt <= now()))::bigint
     FROM pgmq.%I',
    pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id'), qtable)
  INTO result
  USING metrics.queue_name;
  RETURN result;
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.metrics_all()
RETURNS SETOF pgmq.metrics_result LANGUAGE plpgsql AS $fn$
DECLARE
  name text;
BEGIN
  FOR name IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    RETURN NEXT pgmq.metrics(name);
  END LOOP;
END
$fn$`
]

export const statements: ReadonlyArray<string> = [
  `CREATE SCHEMA IF NOT EXISTS pgmq`,
  versionTable,
  `CREATE TABLE IF NOT EXISTS pgmq.meta (
  queue_name varchar UNIQUE NOT NULL,
  is_partitioned boolean NOT NULL,
  is_unlogged boolean NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)`,
  createType(
    "message_record",
    "msg_id bigint, read_ct integer, enqueued_at timestamptz, last_read_at timestamptz, vt timestamptz, message jsonb, headers jsonb"
  ),
  createType("queue_record", "queue_name varchar, is_partitioned boolean, is_unlogged boolean, created_at timestamptz"),
  createType(
    "metrics_result",
    "queue_name text, queue_length bigint, newest_msg_age_sec integer, oldest_msg_age_sec integer, total_messages bigint, scrape_time timestamptz, queue_visible_length bigint"
  ),
  ...queueFunctions,
  ...Messages.statements
]

/** Removes everything `statements` created, queues and their messages included. */
export const rollback: ReadonlyArray<string> = [`DROP SCHEMA IF EXISTS pgmq CASCADE`]
