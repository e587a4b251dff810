/* sensitive_audit--1.0--1.1.sql — update from 1.0 to 1.1 (also run by CREATE EXTENSION) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sensitive_audit UPDATE TO '1.1'" to load this file. \quit

/*
 * 1.1 enforces the audit setup by invariant rather than by guards that
 * match trigger names and commands:
 *  - sensitive_audit.tag_info is the one source of truth of what is tagged;
 *    capture triggers and the tagged_columns view are derived from it;
 *  - after every DDL command (event triggers, in C) every relation whose
 *    rows are rows of a tagged table must carry exactly the canonical
 *    capture triggers, and nothing else may call capture();
 *  - capture() itself refuses to record from a trigger that is not
 *    canonical;
 *  - UPDATEs are captured by what the final row holds (a WHEN clause
 *    comparing old and new tagged and key columns), so BEFORE triggers and
 *    generated columns cannot change a tagged value unseen;
 *  - a plain pg_dump / pg_restore loads the log with no setting, and the
 *    restore is itself an entry of the chain.
 */

/* Nothing on the audit schema for PUBLIC: readers and taggers are granted. */
REVOKE USAGE ON SCHEMA sensitive_audit FROM PUBLIC;

COMMENT ON TABLE sensitive_audit.tag_info IS
	'what is tagged: the one source of truth from which capture triggers are derived';

/*
 * The WHEN clause of the UPDATE capture trigger: true when any pair
 * (old, new) of its arguments differs in its stored image, NULLs included.
 * Writers evaluate it (EXECUTE stays granted to PUBLIC); it is harmless.
 */
CREATE FUNCTION sensitive_audit.changed(VARIADIC "any")
RETURNS boolean
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sensitive_audit_changed';

COMMENT ON FUNCTION sensitive_audit.changed("any") IS
	'used by capture triggers: does any (old, new) pair of arguments differ?';

/* (Re)build a tagged table's capture triggers from tag_info. */
CREATE FUNCTION sensitive_audit._sync_triggers(tbl regclass)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_sync_triggers';
REVOKE ALL ON FUNCTION sensitive_audit._sync_triggers(regclass) FROM PUBLIC;

/* What is tagged, read from the catalog. */
CREATE OR REPLACE VIEW sensitive_audit.tagged_columns AS
SELECT n.nspname AS table_schema,
	   c.relname AS table_name,
	   i.column_name,
	   pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,
	   c.relkind = 'p' AS partitioned,
	   i.tagged_at,
	   i.tagged_by
  FROM sensitive_audit.tag_info i
  JOIN pg_catalog.pg_class c ON c.oid = i.tbl
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a
	ON a.attrelid = c.oid AND a.attname = i.column_name AND NOT a.attisdropped;

/*
 * The invariant, checked at the end of every DDL command and on every drop
 * (src/enforce.cpp).  These replace 1.0's name-matching guards.
 */
DROP EVENT TRIGGER sensitive_audit_partitions;
DROP FUNCTION sensitive_audit.sync_partitions();
DROP EVENT TRIGGER sensitive_audit_guard_drop;
DROP FUNCTION sensitive_audit.guard_drop();

CREATE FUNCTION sensitive_audit.enforce_ddl()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_enforce_ddl';

CREATE EVENT TRIGGER sensitive_audit_enforce_ddl ON ddl_command_end
	EXECUTE FUNCTION sensitive_audit.enforce_ddl();
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;

CREATE FUNCTION sensitive_audit.enforce_drop()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_enforce_drop';

CREATE EVENT TRIGGER sensitive_audit_enforce_drop ON sql_drop
	EXECUTE FUNCTION sensitive_audit.enforce_drop();
ALTER EVENT TRIGGER sensitive_audit_enforce_drop ENABLE ALWAYS;

CREATE FUNCTION sensitive_audit.guard_start()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_guard_start';

CREATE EVENT TRIGGER sensitive_audit_guard_start ON ddl_command_start
	EXECUTE FUNCTION sensitive_audit.guard_start();
ALTER EVENT TRIGGER sensitive_audit_guard_start ENABLE ALWAYS;

REVOKE ALL ON FUNCTION sensitive_audit.guard_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION sensitive_audit.enforce_ddl() FROM PUBLIC;
REVOKE ALL ON FUNCTION sensitive_audit.enforce_drop() FROM PUBLIC;

/*
 * A database with history records its update (a new install runs this
 * script too, with an empty log, and records nothing: a restore needs the
 * log empty).
 */
SELECT sensitive_audit._record_setup('EXTENSION UPDATE', 'sensitive_audit', NULL, '1.0 -> 1.1')
 WHERE EXISTS (SELECT 1 FROM sensitive_audit.log_entries);

/* The log's own DDL guard moved to enforce_ddl() too; 1.0's helpers go. */
DROP EVENT TRIGGER sensitive_audit_guard_ddl;
DROP FUNCTION sensitive_audit.guard_ddl();
DROP FUNCTION sensitive_audit._in_setup();
DROP FUNCTION sensitive_audit._record_setup(text, text, text, text);

/*
 * Restores need no setting: while log_entries is empty, its owner (a
 * superuser, for this extension) may load both storage tables, as pg_restore
 * and psql do with a dump; the load is then recorded as a RESTORE entry
 * saying how many entries it brought.  Restored entries are verified like
 * any others.
 */
CREATE FUNCTION sensitive_audit.log_restored()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_log_restored';
REVOKE ALL ON FUNCTION sensitive_audit.log_restored() FROM PUBLIC;

CREATE TRIGGER log_restored
	AFTER INSERT ON sensitive_audit.log_entries
	REFERENCING NEW TABLE AS restored
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_restored();
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_restored;

/*
 * A parallel restore may load log_entries first, and the RESTORE entry that
 * records it may store a context the dump holds too: a restored context
 * identical to one already stored is skipped rather than a key violation.
 */
CREATE FUNCTION sensitive_audit.log_contexts_restore()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM sensitive_audit.log_contexts c
				WHERE c.id OPERATOR(pg_catalog.=) NEW.id AND c IS NOT DISTINCT FROM NEW) THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION sensitive_audit.log_contexts_restore() FROM PUBLIC;

CREATE TRIGGER log_contexts_restore
	BEFORE INSERT ON sensitive_audit.log_contexts
	FOR EACH ROW EXECUTE FUNCTION sensitive_audit.log_contexts_restore();
ALTER TABLE sensitive_audit.log_contexts ENABLE ALWAYS TRIGGER log_contexts_restore;

/*
 * Tables tagged under 1.0 get 1.1's capture triggers.  1.0 read the tagged
 * columns from its trigger's column list; tag_info agrees with it unless
 * someone wrote to it, so take the union.
 */
INSERT INTO sensitive_audit.tag_info (tbl, column_name, tagged_at, tagged_by)
SELECT t.tgrelid, a.attname, pg_catalog.now(), CURRENT_USER
  FROM pg_catalog.pg_trigger t
 CROSS JOIN LATERAL pg_catalog.unnest(t.tgattr::pg_catalog.int2[]) AS k(attnum)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum
 WHERE t.tgname = 'sensitive_audit_capture' AND t.tgparentid = 0
   AND t.tgfoid = 'sensitive_audit.capture()'::pg_catalog.regprocedure
ON CONFLICT DO NOTHING;
SELECT sensitive_audit._sync_triggers(i.tbl)
  FROM (SELECT DISTINCT tbl FROM sensitive_audit.tag_info) i;

/* ------------------------------------------------------------------------
 * Cross-checking a table against its history (src/reconcile.cpp).
 */
CREATE FUNCTION sensitive_audit._current_values(tbl regclass)
RETURNS TABLE (row_key text, column_name text, value text)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_current_values';

CREATE FUNCTION sensitive_audit._logged_values(tbl regclass)
RETURNS TABLE (row_key text, column_name text, present boolean, value text,
			   event_time timestamptz, chain integer, seq bigint)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_logged_values';

/*
 * One row per place where the table's current tagged values and what its
 * history says they are differ.  Needs SELECT on the table and on
 * sensitive_audit.log (checked by the two functions above, as the caller).
 * The latest entry per (row key, column) is found by (event_time, chain,
 * seq): event_time is when the row changed, and a change to a row waits for
 * the commit of the change before it.
 */
CREATE FUNCTION sensitive_audit.reconcile(tbl regclass)
RETURNS TABLE (row_key jsonb, column_name name, logged_value text, current_value text, problem text)
LANGUAGE sql STRICT STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH logged AS (
	SELECT DISTINCT ON (l.row_key, l.column_name) l.row_key, l.column_name, l.present, l.value
	  FROM sensitive_audit._logged_values(tbl) l
	 ORDER BY l.row_key, l.column_name, l.event_time DESC, l.chain DESC, l.seq DESC
), now AS (
	SELECT c.row_key, c.column_name, c.value FROM sensitive_audit._current_values(tbl) c
)
SELECT COALESCE(l.row_key, n.row_key)::jsonb,
	   COALESCE(l.column_name, n.column_name)::name,
	   CASE WHEN l.present THEN l.value END,
	   n.value,
	   CASE WHEN n.row_key IS NULL THEN 'row missing'
			WHEN l.row_key IS NULL THEN 'row without history'
			WHEN NOT l.present THEN 'row without history'
			ELSE 'changed behind the log''s back' END
  FROM logged l
  FULL JOIN now n ON n.row_key = l.row_key AND n.column_name = l.column_name
 WHERE NOT (n.row_key IS NULL AND l.present IS NOT TRUE)
   AND NOT (n.row_key IS NOT NULL AND l.present AND l.value IS NOT DISTINCT FROM n.value)
 ORDER BY 1, 2
$$;

COMMENT ON FUNCTION sensitive_audit.reconcile(regclass) IS
	'where the table''s current tagged values differ from what its history says they are';

/* Rows a table held before it was tagged enter the history as BASELINE entries. */
CREATE FUNCTION sensitive_audit.baseline(tbl regclass)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_baseline';

COMMENT ON FUNCTION sensitive_audit.baseline(regclass) IS
	'record the current tagged values of every row of a tagged table as BASELINE entries';
