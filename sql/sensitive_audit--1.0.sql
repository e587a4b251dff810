/* sensitive_audit--1.0.sql — install script, version 1.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION sensitive_audit" to load this file. \quit

/*
 * The log.  One entry per changed tagged column, and one per change to the
 * audit setup (TAG, UNTAG, ...).  Entries are written only by the
 * extension's commit-time linker, below SQL, so no role needs INSERT; the
 * guard triggers refuse every INSERT, UPDATE, DELETE and TRUNCATE issued
 * through SQL, by anyone.
 *
 * Storage is split in two so that an entry costs little more than its own
 * values: what changes from entry to entry (log_entries), and the "context"
 * that repeats over many entries -- operation, table, column, value type,
 * key source and who -- stored once in log_contexts and referenced by id.
 * sensitive_audit.log joins them back: its column names are the product
 * contract, and an entry's hash covers the texts it shows, so rewriting a
 * context row is caught at every entry that refers to it.
 */
CREATE TABLE sensitive_audit.log_contexts (
	id				bigint		NOT NULL,
	operation		text		NOT NULL,
	table_schema	text,
	table_name		text,
	column_name		text,
	row_key_source	text,
	value_type		text,
	session_role	text		NOT NULL,
	effective_role	text		NOT NULL,
	application_name text,
	client_addr		inet,
	CONSTRAINT log_contexts_pkey PRIMARY KEY (id)
);

/* Fixed-width columns first, widest aligned first: no padding in a row. */
CREATE TABLE sensitive_audit.log_entries (
	chain			integer		NOT NULL,
	backend_pid		integer		NOT NULL,
	seq				bigint		NOT NULL,
	txid			xid8		NOT NULL,
	event_time		timestamptz NOT NULL,
	context			bigint		NOT NULL,
	format			smallint	NOT NULL,
	row_key			jsonb,
	old_value		text,
	new_value		text,
	prev_hash		bytea		NOT NULL,
	hash			bytea		NOT NULL,
	CONSTRAINT log_entries_pkey PRIMARY KEY (chain, seq)
);

CREATE VIEW sensitive_audit.log AS
SELECT e.chain, e.seq, e.txid, e.event_time,
	   c.operation, c.table_schema, c.table_name, c.column_name,
	   e.row_key, c.row_key_source, e.old_value, e.new_value, c.value_type,
	   c.session_role, c.effective_role, c.application_name, c.client_addr,
	   e.backend_pid, e.prev_hash, e.hash, e.format, e.context
  FROM sensitive_audit.log_entries e
  LEFT JOIN sensitive_audit.log_contexts c ON c.id = e.context;

COMMENT ON VIEW sensitive_audit.log IS
	'insert-only, hash-chained history of changes to tagged columns';
COMMENT ON TABLE sensitive_audit.log_entries IS
	'storage of sensitive_audit.log: one row per entry';
COMMENT ON TABLE sensitive_audit.log_contexts IS
	'storage of sensitive_audit.log: the fields entries share, once each';

REVOKE ALL ON sensitive_audit.log FROM PUBLIC;
REVOKE ALL ON sensitive_audit.log_entries FROM PUBLIC;
REVOKE ALL ON sensitive_audit.log_contexts FROM PUBLIC;

-- The log's rows are the product: pg_dump must carry them.
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.log_contexts', '');
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.log_entries', '');

/*
 * Who tagged what, and when.  The authoritative list of tagged columns is
 * the column list of each table's capture trigger (pg_trigger.tgattr), which
 * follows column renames and survives dump/restore; this table only keeps
 * the metadata shown by the tagged_columns view.
 */
CREATE TABLE sensitive_audit.tag_info (
	tbl				regclass	NOT NULL,
	column_name		name		NOT NULL,
	tagged_at		timestamptz NOT NULL,
	tagged_by		text		NOT NULL,
	PRIMARY KEY (tbl, column_name)
);
REVOKE ALL ON sensitive_audit.tag_info FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.tag_info', '');

/* ------------------------------------------------------------------------
 * Capture.  Row triggers created by tag() call these; they are ENABLE
 * ALWAYS so that replica-mode sessions and logical-replication apply are
 * captured too.
 */
CREATE FUNCTION sensitive_audit.capture()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_capture';

CREATE FUNCTION sensitive_audit.capture_truncate()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_capture_truncate';

/* ------------------------------------------------------------------------
 * Tagging.
 */
CREATE FUNCTION sensitive_audit.tag(tbl regclass, VARIADIC cols name[])
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_tag';

COMMENT ON FUNCTION sensitive_audit.tag(regclass, name[]) IS
	'start auditing changes to the given columns of a table';

CREATE FUNCTION sensitive_audit.untag(tbl regclass, VARIADIC cols name[])
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_untag';

COMMENT ON FUNCTION sensitive_audit.untag(regclass, name[]) IS
	'stop auditing changes to the given columns of a table';

/* True while tag()/untag() rebuild a capture trigger (used by the guards). */
CREATE FUNCTION sensitive_audit._in_setup()
RETURNS boolean
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_in_setup';

/* Records a change to the audit setup (used by the guards). */
CREATE FUNCTION sensitive_audit._record_setup(operation text, tbl_schema text, tbl_name text, detail text)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_record_setup';
REVOKE ALL ON FUNCTION sensitive_audit._record_setup(text, text, text, text) FROM PUBLIC;

CREATE VIEW sensitive_audit.tagged_columns AS
SELECT n.nspname AS table_schema,
	   c.relname AS table_name,
	   a.attname AS column_name,
	   pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,
	   c.relkind = 'p' AS partitioned,
	   i.tagged_at,
	   i.tagged_by
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL pg_catalog.unnest(t.tgattr::pg_catalog.int2[]) AS k(attnum)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
  LEFT JOIN sensitive_audit.tag_info i
	ON i.tbl = c.oid AND i.column_name = a.attname
 WHERE t.tgname = 'sensitive_audit_capture'
   AND t.tgfoid = 'sensitive_audit.capture()'::pg_catalog.regprocedure
   AND t.tgparentid = 0;

REVOKE ALL ON sensitive_audit.tagged_columns FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Verification.
 */
CREATE FUNCTION sensitive_audit.verify()
RETURNS TABLE (chain integer, entries bigint, ok boolean, first_bad_seq bigint, problem text)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_verify';

COMMENT ON FUNCTION sensitive_audit.verify() IS
	'check every chain of the log; one row per chain, with the first failing entry and why';

CREATE FUNCTION sensitive_audit.verify_or_raise()
RETURNS bigint
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_verify_or_raise';

COMMENT ON FUNCTION sensitive_audit.verify_or_raise() IS
	'check every chain of the log; raise data_corrupted on any failure, else return the number of entries';

REVOKE ALL ON FUNCTION sensitive_audit.verify() FROM PUBLIC;
REVOKE ALL ON FUNCTION sensitive_audit.verify_or_raise() FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Guards.  The log refuses SQL writes from everyone; DDL that would switch
 * capture off or alter the audit schema is refused.  What a superuser still
 * forces (disabling these triggers first) is caught by verify().
 */
CREATE FUNCTION sensitive_audit.log_guard()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_log_guard';

CREATE TRIGGER log_guard
	BEFORE INSERT OR UPDATE OR DELETE ON sensitive_audit.log_entries
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE TRIGGER log_guard_truncate
	BEFORE TRUNCATE ON sensitive_audit.log_entries
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_guard_truncate;
CREATE TRIGGER log_guard
	BEFORE INSERT OR UPDATE OR DELETE ON sensitive_audit.log_contexts
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE TRIGGER log_guard_truncate
	BEFORE TRUNCATE ON sensitive_audit.log_contexts
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
ALTER TABLE sensitive_audit.log_contexts ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.log_contexts ENABLE ALWAYS TRIGGER log_guard_truncate;
-- The view is not updatable anyway (a join); this gives the guards' error.
CREATE TRIGGER log_guard_view
	INSTEAD OF INSERT OR UPDATE OR DELETE ON sensitive_audit.log
	FOR EACH ROW EXECUTE FUNCTION sensitive_audit.log_guard();

/*
 * ALTER TABLE on the log, or on an audited table in a way that switches its
 * capture triggers off, is refused.
 */
CREATE FUNCTION sensitive_audit.guard_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cmd record;
	trg record;
	target pg_catalog.oid;
BEGIN
	IF sensitive_audit._in_setup() THEN
		RETURN;
	END IF;
	FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands()
	LOOP
		-- the relation a command changes: itself, or the owner of a rule
		-- (CREATE RULE "_RETURN" redefines a view), trigger or policy
		target := CASE cmd.classid
			WHEN 'pg_catalog.pg_class'::regclass THEN cmd.objid
			WHEN 'pg_catalog.pg_rewrite'::regclass THEN
				(SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid = cmd.objid)
			WHEN 'pg_catalog.pg_trigger'::regclass THEN
				(SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = cmd.objid)
			WHEN 'pg_catalog.pg_policy'::regclass THEN
				(SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = cmd.objid)
		END;
		CONTINUE WHEN target IS NULL;
		IF target IN ('sensitive_audit.log'::regclass, 'sensitive_audit.log_entries'::regclass,
					  'sensitive_audit.log_contexts'::regclass, 'sensitive_audit.tag_info'::regclass) THEN
			RAISE EXCEPTION 'the audit log cannot be altered'
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = pg_catalog.format('%s would change %s.', cmd.command_tag, cmd.object_identity);
		END IF;
		CONTINUE WHEN cmd.classid <> 'pg_catalog.pg_class'::regclass;
		FOR trg IN SELECT t.tgname, t.tgenabled FROM pg_catalog.pg_trigger t
					WHERE t.tgrelid = cmd.objid
					  AND t.tgname IN ('sensitive_audit_capture', 'sensitive_audit_truncate')
					  AND t.tgenabled <> 'A'
		LOOP
			RAISE EXCEPTION 'capture cannot be disabled on audited table %', cmd.object_identity
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = pg_catalog.format('Trigger %s must stay ENABLE ALWAYS.', trg.tgname),
					  HINT = 'Use sensitive_audit.untag() to stop auditing a column; it is recorded in the log.';
		END LOOP;
	END LOOP;
END;
$$;

CREATE EVENT TRIGGER sensitive_audit_guard_ddl ON ddl_command_end
	EXECUTE FUNCTION sensitive_audit.guard_ddl();
ALTER EVENT TRIGGER sensitive_audit_guard_ddl ENABLE ALWAYS;

/* New partitions of an audited table get their TRUNCATE trigger. */
CREATE FUNCTION sensitive_audit.sync_partitions()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_sync_partitions';

CREATE EVENT TRIGGER sensitive_audit_partitions ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
	EXECUTE FUNCTION sensitive_audit.sync_partitions();
ALTER EVENT TRIGGER sensitive_audit_partitions ENABLE ALWAYS;
REVOKE ALL ON FUNCTION sensitive_audit.sync_partitions() FROM PUBLIC;

/*
 * Dropping a capture trigger (directly, or through DROP COLUMN ... CASCADE)
 * is refused; dropping an audited table is recorded in the chain.
 */
CREATE FUNCTION sensitive_audit.guard_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	obj record;
BEGIN
	IF sensitive_audit._in_setup() THEN
		RETURN;
	END IF;
	FOR obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects()
	LOOP
		IF obj.object_type = 'table' AND obj.schema_name = 'sensitive_audit' THEN
			RAISE EXCEPTION 'the audit log cannot be dropped'
				USING ERRCODE = 'insufficient_privilege',
					  HINT = 'DROP EXTENSION sensitive_audit removes the whole history; see sensitive_audit.allow_drop.';
		END IF;
		IF obj.object_type = 'trigger' AND obj.object_identity LIKE '% on sensitive_audit.%' THEN
			RAISE EXCEPTION 'the audit log''s guards cannot be dropped'
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = pg_catalog.format('%s keeps the log insert-only.', obj.object_identity);
		END IF;
		IF obj.object_type = 'trigger'
		   AND pg_catalog.split_part(obj.object_identity, ' on ', 1)
			   IN ('sensitive_audit_capture', 'sensitive_audit_truncate') THEN
			-- The whole table going away is fine: it is recorded below.
			IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
							WHERE d.object_type = 'table'
							  AND obj.object_identity LIKE '% on ' || d.object_identity) THEN
				RAISE EXCEPTION 'capture trigger of an audited table cannot be dropped'
					USING ERRCODE = 'insufficient_privilege',
						  DETAIL = pg_catalog.format('%s would stop auditing.', obj.object_identity),
						  HINT = 'Use sensitive_audit.untag() first; it is recorded in the log.';
			END IF;
		END IF;
		IF obj.object_type = 'table' AND obj.original
		   AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
						WHERE d.object_type = 'trigger'
						  AND d.object_identity = 'sensitive_audit_capture on ' || obj.object_identity) THEN
			PERFORM sensitive_audit._record_setup('DROP TABLE', obj.schema_name, obj.object_name,
												  NULL);
			DELETE FROM sensitive_audit.tag_info WHERE tbl::pg_catalog.oid = obj.objid;
		END IF;
	END LOOP;
END;
$$;

CREATE EVENT TRIGGER sensitive_audit_guard_drop ON sql_drop
	EXECUTE FUNCTION sensitive_audit.guard_drop();
ALTER EVENT TRIGGER sensitive_audit_guard_drop ENABLE ALWAYS;

/*
 * DROP EXTENSION would take the whole history with it: refused while the
 * log holds entries, unless a superuser sets sensitive_audit.allow_drop.
 */
CREATE FUNCTION sensitive_audit.guard_drop_extension()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_guard_drop_extension';

CREATE EVENT TRIGGER sensitive_audit_guard_drop_extension ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
	EXECUTE FUNCTION sensitive_audit.guard_drop_extension();
ALTER EVENT TRIGGER sensitive_audit_guard_drop_extension ENABLE ALWAYS;

REVOKE ALL ON FUNCTION sensitive_audit.guard_ddl() FROM PUBLIC;
REVOKE ALL ON FUNCTION sensitive_audit.guard_drop() FROM PUBLIC;
REVOKE ALL ON FUNCTION sensitive_audit.guard_drop_extension() FROM PUBLIC;
REVOKE ALL ON FUNCTION sensitive_audit.log_guard() FROM PUBLIC;

GRANT USAGE ON SCHEMA sensitive_audit TO PUBLIC;
