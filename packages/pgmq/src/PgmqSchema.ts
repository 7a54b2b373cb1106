/**
 * A PGMQ-compatible schema, written for Conveyor, for databases without the
 * `pgmq` extension: schema `pgmq`, table `pgmq.meta`, per-queue tables
 * `pgmq.q_<name>` / `pgmq.a_<name>` with PGMQ's columns, and PGMQ's functions
 * for the core API with PGMQ's signatures, so other PGMQ clients work against
 * it unchanged.
 *
 * Every statement is a single SQL statement (the extended protocol runs one at
 * a time); `statements` is applied in order inside one transaction by
 * `PgmqInstaller`. Queue names are lower-cased and checked against
 * `^[a-z_][a-z0-9_]*$` (at most 51 characters: PGMQ's 47 plus room for
 * the `_dlq` suffix of a dead-letter queue) before any identifier is built,
 * and identifiers are always formatted with `%I`.
 */

/** Bumped whenever `statements` changes; recorded in `pgmq.conveyor_version`. */
export const version = 2

/**
 * The advisory lock every schema change takes: installs, and creating or
 * dropping a queue from any client. Replacing the notify function while
 * another session attaches it to a new queue's table, or two sessions
 * creating and dropping queues, otherwise deadlock in PostgreSQL.
 */
export const lockKey = 0x636f6e76 // "conv"

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

const messageColumns = "msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers"

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

  // The one place identifiers are derived from queue names.
  `CREATE OR REPLACE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
  name text := lower(format_table_name.queue_name);
BEGIN
  IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]*$' THEN
    RAISE EXCEPTION 'queue name contains invalid characters: %', format_table_name.queue_name
      USING ERRCODE = '22023';
  END IF;
  -- PGMQ allows 47; four more fit a Conveyor dead-letter queue (<name>_dlq).
  IF length(name) > 51 THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is 51 characters'
      USING ERRCODE = '22023';
  END IF;
  RETURN format_table_name.prefix || '_' || name;
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq."create"(queue_name text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  qtable text := pgmq.format_table_name("create".queue_name, 'q');
  atable text := pgmq.format_table_name("create".queue_name, 'a');
BEGIN
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
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', left('archived_at_idx_' || substr(qtable, 3), 63), atable);
  -- Last, as PGMQ does: a trigger on meta may rely on the tables existing.
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (substr(qtable, 3), false, false)
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
  IF NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = substr(qtable, 3)) THEN
    RAISE NOTICE 'pgmq queue % does not exist', drop_queue.queue_name;
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', qtable);
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', atable);
  DELETE FROM pgmq.meta m WHERE m.queue_name = substr(qtable, 3);
  RETURN true;
END
$fn$`,

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

  // send: the headers + timestamp form does the work; the others delegate.
  `CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
    pgmq.format_table_name(send.queue_name, 'q'))
  USING send.delay, send.msg, send.headers;
END
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, headers, clock_timestamp() + make_interval(secs => delay))
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, delay)
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, clock_timestamp() + make_interval(secs => delay))
$fn$`,

  // send_batch: one INSERT, so the notify trigger sees one statement.
  `CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  IF send_batch.headers IS NOT NULL
     AND cardinality(send_batch.headers) <> cardinality(send_batch.msgs) THEN
    RAISE EXCEPTION 'headers array must have the same length as msgs' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers)
     SELECT $2, m.msg, $3[m.ord] FROM unnest($1) WITH ORDINALITY AS m(msg, ord) ORDER BY m.ord
     RETURNING msg_id',
    pgmq.format_table_name(send_batch.queue_name, 'q'))
  USING send_batch.msgs, send_batch.delay, send_batch.headers;
END
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, headers, clock_timestamp() + make_interval(secs => delay))
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], delay)
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], clock_timestamp() + make_interval(secs => delay))
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= clock_timestamp() AND ($3 = ''{}''::jsonb OR message @> $3)
       ORDER BY msg_id ASC LIMIT $1
       FOR UPDATE SKIP LOCKED)
     UPDATE pgmq.%1$I m
     SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
     FROM cte WHERE m.msg_id = cte.msg_id
     RETURNING ${messageColumns.split(", ").map((c) => `m.${c}`).join(", ")}',
    pgmq.format_table_name(read.queue_name, 'q'))
  USING read.qty, read.vt, coalesce(read.conditional, '{}'::jsonb);
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= clock_timestamp()
       ORDER BY msg_id ASC LIMIT $1
       FOR UPDATE SKIP LOCKED)
     DELETE FROM pgmq.%1$I m USING cte WHERE m.msg_id = cte.msg_id
     RETURNING ${messageColumns.split(", ").map((c) => `m.${c}`).join(", ")}',
    pgmq.format_table_name(pop.queue_name, 'q'))
  USING pop.qty;
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id',
    pgmq.format_table_name(delete.queue_name, 'q'))
  USING delete.msg_ids;
END
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
  SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id]))
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH archived AS (
       DELETE FROM pgmq.%I WHERE msg_id = ANY($1)
       RETURNING ${messageColumns})
     INSERT INTO pgmq.%I (${messageColumns})
     SELECT ${messageColumns} FROM archived
     RETURNING msg_id',
    pgmq.format_table_name(archive.queue_name, 'q'),
    pgmq.format_table_name(archive.queue_name, 'a'))
  USING archive.msg_ids;
END
$fn$`,
  `CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
  SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id]))
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2) WHERE msg_id = $1
     RETURNING ${messageColumns}',
    pgmq.format_table_name(set_vt.queue_name, 'q'))
  USING set_vt.msg_id, set_vt.vt;
END
$fn$`,

  `CREATE OR REPLACE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record LANGUAGE sql STABLE AS $fn$
  SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at FROM pgmq.meta m ORDER BY m.queue_name
$fn$`,

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
            (count(*) FILTER (WHERE vt <= clock_timestamp()))::bigint
     FROM pgmq.%I',
    pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id'), qtable)
  INTO result
  USING substr(qtable, 3);
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

/** Removes everything `statements` created, queues and their messages included. */
export const rollback: ReadonlyArray<string> = [`DROP SCHEMA IF EXISTS pgmq CASCADE`]
