/**
 * The message half of the PGMQ-compatible schema (`PgmqSchema`): send,
 * send_batch, read, pop, delete, archive and set_vt with pgmq 1.11's
 * overloads, parameter names and error texts. Each overload that takes an
 * integer delay or none delegates to the timestamp form, as upstream's do.
 * Identifiers come only from `pgmq.format_table_name` and are formatted with
 * `%I`; every value is a bound parameter.
 */

const columns = ["msg_id", "read_ct", "enqueued_at", "last_read_at", "vt", "message", "headers"]
const messageColumns = columns.join(", ")
const returning = columns.map((column) => `m.${column}`).join(", ")

const afterSeconds = (seconds: string) => `clock_timestamp() + make_interval(secs => ${seconds})`

/** A LANGUAGE sql overload that calls `target` with `call`. */
const delegate = (signature: string, returns: string, call: string) =>
  `CREATE OR REPLACE FUNCTION pgmq.${signature}
RETURNS ${returns} LANGUAGE sql AS $fn$
  SELECT * FROM pgmq.${call}
$fn$`

/**
 * Schema v2 declared these with DEFAULT arguments where pgmq has separate
 * overloads; CREATE OR REPLACE cannot drop a default, and the old and new
 * forms together make calls ambiguous, so an upgrade drops them first.
 */
export const retired: ReadonlyArray<string> = [
  `DROP FUNCTION IF EXISTS pgmq.send(text, jsonb, jsonb, integer)`,
  `DROP FUNCTION IF EXISTS pgmq.send(text, jsonb, integer)`,
  `DROP FUNCTION IF EXISTS pgmq.send_batch(text, jsonb[], jsonb[], integer)`,
  `DROP FUNCTION IF EXISTS pgmq.send_batch(text, jsonb[], integer)`
]

const send = [
  `CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
    pgmq.format_table_name(send.queue_name, 'q'))
  USING send.delay, send.msg, send.headers;
END
$fn$`,
  delegate("send(queue_name text, msg jsonb)", "SETOF bigint", "send(queue_name, msg, NULL::jsonb, clock_timestamp())"),
  delegate(
    "send(queue_name text, msg jsonb, headers jsonb)",
    "SETOF bigint",
    "send(queue_name, msg, headers, clock_timestamp())"
  ),
  delegate(
    "send(queue_name text, msg jsonb, delay integer)",
    "SETOF bigint",
    `send(queue_name, msg, NULL::jsonb, ${afterSeconds("delay")})`
  ),
  delegate("send(queue_name text, msg jsonb, delay timestamptz)", "SETOF bigint", "send(queue_name, msg, NULL::jsonb, delay)"),
  delegate(
    "send(queue_name text, msg jsonb, headers jsonb, delay integer)",
    "SETOF bigint",
    `send(queue_name, msg, headers, ${afterSeconds("delay")})`
  )
]

// One INSERT for the whole batch, so the notify trigger sees one statement.
const sendBatch = [
  `CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  IF send_batch.msgs IS NULL OR array_length(send_batch.msgs, 1) IS NULL THEN
    RAISE EXCEPTION 'msgs cannot be NULL or empty';
  END IF;
  IF send_batch.headers IS NOT NULL
     AND coalesce(array_length(send_batch.headers, 1), 0) <> array_length(send_batch.msgs, 1) THEN
    RAISE EXCEPTION 'headers array length (%) must match msgs array length (%)',
      coalesce(array_length(send_batch.headers, 1), 0), array_length(send_batch.msgs, 1);
  END IF;
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers)
     SELECT $2, m.msg, m.headers FROM unnest($1, $3) WITH ORDINALITY AS m(msg, headers, ord) ORDER BY m.ord
     RETURNING msg_id',
    pgmq.format_table_name(send_batch.queue_name, 'q'))
  USING send_batch.msgs, send_batch.delay, send_batch.headers;
END
$fn$`,
  delegate(
    "send_batch(queue_name text, msgs jsonb[])",
    "SETOF bigint",
    "send_batch(queue_name, msgs, NULL::jsonb[], clock_timestamp())"
  ),
  delegate(
    "send_batch(queue_name text, msgs jsonb[], headers jsonb[])",
    "SETOF bigint",
    "send_batch(queue_name, msgs, headers, clock_timestamp())"
  ),
  delegate(
    "send_batch(queue_name text, msgs jsonb[], delay integer)",
    "SETOF bigint",
    `send_batch(queue_name, msgs, NULL::jsonb[], ${afterSeconds("delay")})`
  ),
  delegate(
    "send_batch(queue_name text, msgs jsonb[], delay timestamptz)",
    "SETOF bigint",
    "send_batch(queue_name, msgs, NULL::jsonb[], delay)"
  ),
  delegate(
    "send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)",
    "SETOF bigint",
    `send_batch(queue_name, msgs, headers, ${afterSeconds("delay")})`
  )
]

// read sets last_read_at; pop returns the row as it was, as upstream's do.
const claims = [
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
     SET vt = ${afterSeconds("$2")}, read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
     FROM cte WHERE m.msg_id = cte.msg_id
     RETURNING ${returning}',
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
     RETURNING ${returning}',
    pgmq.format_table_name(pop.queue_name, 'q'))
  USING pop.qty;
END
$fn$`
]

/** The single-id form beside an array form: true when the id was found. */
const singleId = (name: string) =>
  `CREATE OR REPLACE FUNCTION pgmq.${name}(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
  SELECT EXISTS (SELECT 1 FROM pgmq.${name}(queue_name, ARRAY[msg_id]))
$fn$`

const settle = [
  `CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id',
    pgmq.format_table_name(delete.queue_name, 'q'))
  USING delete.msg_ids;
END
$fn$`,
  singleId("delete"),
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
  singleId("archive")
]

const setVt = [
  `CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamptz)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'UPDATE pgmq.%I m SET vt = $1 WHERE m.msg_id = ANY($2) RETURNING ${returning}',
    pgmq.format_table_name(set_vt.queue_name, 'q'))
  USING set_vt.vt, set_vt.msg_ids;
END
$fn$`,
  delegate(
    "set_vt(queue_name text, msg_ids bigint[], vt integer)",
    "SETOF pgmq.message_record",
    `set_vt(queue_name, msg_ids, ${afterSeconds("vt")})`
  ),
  delegate(
    "set_vt(queue_name text, msg_id bigint, vt timestamptz)",
    "SETOF pgmq.message_record",
    "set_vt(queue_name, ARRAY[msg_id], vt)"
  ),
  delegate(
    "set_vt(queue_name text, msg_id bigint, vt integer)",
    "SETOF pgmq.message_record",
    `set_vt(queue_name, ARRAY[msg_id], ${afterSeconds("vt")})`
  )
]

export const statements: ReadonlyArray<string> = [...retired, ...send, ...sendBatch, ...claims, ...settle, ...setVt]
