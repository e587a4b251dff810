/* sensitive_audit--1.2--1.3.sql — update from 1.2 to 1.3 (also run by CREATE EXTENSION) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sensitive_audit UPDATE TO '1.3'" to load this file. \quit

/*
 * 1.3 keeps sensitive values out of the log in clear text (DESIGN.md,
 * "Sensitive values protected in the log"; docs/FORMAT.md, section 11).
 * Per tagged column, protect() chooses what an entry stores of a value:
 *  - plain        the canonical text (format 1 entries, as before);
 *  - fingerprint  HMAC-SHA-256 under this database's fingerprint key;
 *  - encrypt      the value sealed to the X25519 public key of
 *                 set_encryption_key(), whose private key stays outside;
 *  - erasable     a salted SHA-256 commitment, with salt and value kept
 *                 beside the log in erasable_values until erase().
 * Protected entries are format 2: encoded and hashed as format 1 entries
 * are, the chain committing to the stored form, so verification never
 * needs a key or a clear value.
 */

/*
 * The protection of tagged columns (a column it does not list is plain);
 * fingerprint_salt, made the first time a column is fingerprinted and kept
 * while it stays tagged, derives the column's own fingerprint key from the
 * database's, so that equal values fingerprint the same within a column
 * only and no other column can serve to test candidates.
 */
CREATE TABLE sensitive_audit.protect_info (
	tbl				regclass	NOT NULL,
	column_name		name		NOT NULL,
	mode			text		NOT NULL CHECK (mode IN ('plain', 'fingerprint', 'encrypt', 'erasable')),
	set_at			timestamptz NOT NULL,
	set_by			text		NOT NULL,
	fingerprint_salt bytea		CHECK (pg_catalog.octet_length(fingerprint_salt) = 16),
	PRIMARY KEY (tbl, column_name)
);
REVOKE ALL ON sensitive_audit.protect_info FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.protect_info', '');

/*
 * The key of fingerprints: 32 random bytes made by the first protect(...,
 * 'fingerprint') of the database.  Nobody but the extension's owner can
 * read it; a dump made by that owner carries it, so a restored database
 * fingerprints as the original did (README, "Protected values").
 */
CREATE TABLE sensitive_audit.fingerprint_key (
	singleton		boolean		NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton),
	key				bytea		NOT NULL CHECK (pg_catalog.octet_length(key) = 32),
	created_at		timestamptz NOT NULL
);
REVOKE ALL ON sensitive_audit.fingerprint_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.fingerprint_key', '');

/* Public keys values are sealed to; the one set last (highest position) is in use. */
CREATE TABLE sensitive_audit.encryption_keys (
	key_id			text		NOT NULL PRIMARY KEY,
	public_key		text		NOT NULL,
	set_at			timestamptz NOT NULL,
	set_by			text		NOT NULL,
	position		bigint		NOT NULL UNIQUE
);
REVOKE ALL ON sensitive_audit.encryption_keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.encryption_keys', '');

/*
 * The salt and value behind each commitment of an erasable column, under
 * the relation (NULL once it is dropped), the names the entry gave it, and
 * the row's latest key.  erase() empties salt and value (the commitment
 * stays, and says the value was erased, when and by whom).  Statistics are
 * never kept of salts and values: pg_statistic would keep them after erase().
 */
CREATE TABLE sensitive_audit.erasable_values (
	commitment		bytea		NOT NULL PRIMARY KEY,
	table_schema	text		NOT NULL,
	table_name		text		NOT NULL,
	row_key			jsonb,
	salt			bytea,
	value			text,
	erased_at		timestamptz,
	erased_by		text,
	tbl				regclass,
	CHECK ((salt IS NULL) = (erased_at IS NOT NULL))
);
ALTER TABLE sensitive_audit.erasable_values ALTER COLUMN salt SET STATISTICS 0,
	ALTER COLUMN value SET STATISTICS 0, ALTER COLUMN row_key SET STATISTICS 0;
CREATE INDEX erasable_values_row ON sensitive_audit.erasable_values (tbl, row_key);
REVOKE ALL ON sensitive_audit.erasable_values FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.erasable_values', '');

CREATE FUNCTION sensitive_audit.protect(tbl regclass, col name, mode text)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_protect';
COMMENT ON FUNCTION sensitive_audit.protect(regclass, name, text) IS
	'choose what the log keeps of a tagged column''s values: plain, fingerprint, encrypt or erasable';

CREATE FUNCTION sensitive_audit.set_encryption_key(public_key text)
RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_set_encryption_key';
REVOKE ALL ON FUNCTION sensitive_audit.set_encryption_key(text) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.set_encryption_key(text) IS
	'seal the values of encrypt columns to this X25519 public key (PEM) from now on; returns its key id';

CREATE FUNCTION sensitive_audit.fingerprint(tbl regclass, col name, value text)
RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_fingerprint';
REVOKE ALL ON FUNCTION sensitive_audit.fingerprint(regclass, name, text) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.fingerprint(regclass, name, text) IS
	'the fingerprint a candidate value of a fingerprint column would have in the log';

CREATE FUNCTION sensitive_audit.erase(tbl regclass, row_key jsonb)
RETURNS bigint
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_erase';
REVOKE ALL ON FUNCTION sensitive_audit.erase(regclass, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.erase(regclass, jsonb) IS
	'erase the kept values of one row key of a table''s erasable columns (an ERASE entry); returns how many';

CREATE FUNCTION sensitive_audit.erase(table_schema text, table_name text, row_key jsonb)
RETURNS bigint
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_erase_by_name';
REVOKE ALL ON FUNCTION sensitive_audit.erase(text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.erase(text, text, jsonb) IS
	'erase the kept values of one row key of a table by the names its entries gave it (a table dropped since)';

/*
 * The log shows the value an erasable entry committed to while it is kept,
 * and the commitment once it is erased; protection says which form a
 * format 2 entry holds.
 */
CREATE OR REPLACE VIEW sensitive_audit.log AS
SELECT e.chain, e.seq, e.txid, e.event_time,
	   c.operation, c.table_schema, c.table_name, c.column_name,
	   e.row_key, c.row_key_source,
	   CASE WHEN e.format = 2 AND pg_catalog.left(e.old_value, 14) = 'sha256-salted:'
			THEN COALESCE((SELECT v.value FROM sensitive_audit.erasable_values v
							WHERE v.commitment = pg_catalog.decode(pg_catalog.substr(e.old_value, 15), 'hex')),
						  e.old_value)
			ELSE e.old_value END AS old_value,
	   CASE WHEN e.format = 2 AND pg_catalog.left(e.new_value, 14) = 'sha256-salted:'
			THEN COALESCE((SELECT v.value FROM sensitive_audit.erasable_values v
							WHERE v.commitment = pg_catalog.decode(pg_catalog.substr(e.new_value, 15), 'hex')),
						  e.new_value)
			ELSE e.new_value END AS new_value,
	   c.value_type,
	   c.session_role, c.effective_role, c.application_name, c.client_addr,
	   e.backend_pid, e.prev_hash, e.hash, e.format, e.context,
	   CASE WHEN e.format = 2 THEN
			CASE pg_catalog.split_part(COALESCE(e.new_value, e.old_value), ':', 1)
				 WHEN 'hmac-sha256' THEN 'fingerprint'
				 WHEN 'x25519-aes256gcm' THEN 'encrypt'
				 WHEN 'sha256-salted' THEN
					CASE WHEN EXISTS (SELECT 1 FROM sensitive_audit.erasable_values v
									   WHERE v.commitment = pg_catalog.decode(pg_catalog.substr(COALESCE(e.new_value, e.old_value), 15), 'hex')
										 AND v.salt IS NOT NULL)
						 THEN 'erasable' ELSE 'erased' END
			END
	   END AS protection
  FROM sensitive_audit.log_entries e
  LEFT JOIN sensitive_audit.log_contexts c ON c.id = e.context;

/* What is tagged, and how its values are kept in the log. */
CREATE OR REPLACE VIEW sensitive_audit.tagged_columns AS
SELECT n.nspname AS table_schema,
	   c.relname AS table_name,
	   i.column_name,
	   pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,
	   c.relkind = 'p' AS partitioned,
	   i.tagged_at,
	   i.tagged_by,
	   COALESCE(p.mode, 'plain') AS protection
  FROM sensitive_audit.tag_info i
  JOIN pg_catalog.pg_class c ON c.oid = i.tbl
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a
	ON a.attrelid = c.oid AND a.attname = i.column_name AND NOT a.attisdropped
  LEFT JOIN sensitive_audit.protect_info p
	ON p.tbl = i.tbl AND p.column_name = i.column_name;

/*
 * reconcile() compares protected columns in the form the log keeps: a
 * fingerprint with the fingerprint of the current value (for a caller who
 * may call fingerprint(); for others only for being NULL or not), an
 * erasable value while it is kept; a sealed or erased value only for being
 * NULL or not (the key holder compares sealed values with `sensitive-audit
 * decrypt`).
 */
DROP FUNCTION sensitive_audit.reconcile(regclass);
DROP FUNCTION sensitive_audit._current_values(regclass);
DROP FUNCTION sensitive_audit._logged_values(regclass);

CREATE FUNCTION sensitive_audit._current_values(tbl regclass)
RETURNS TABLE (row_key text, column_name text, value text, fingerprint text)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_current_values';

CREATE FUNCTION sensitive_audit._logged_values(tbl regclass)
RETURNS TABLE (row_key text, column_name text, present boolean, value text,
			   event_time timestamptz, chain integer, seq bigint, protection text)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_logged_values';

CREATE FUNCTION sensitive_audit.reconcile(tbl regclass)
RETURNS TABLE (row_key jsonb, column_name name, logged_value text, current_value text, problem text)
LANGUAGE sql STRICT STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH logged AS (
	SELECT DISTINCT ON (l.row_key, l.column_name) l.row_key, l.column_name, l.present, l.value, l.protection
	  FROM sensitive_audit._logged_values(tbl) l
	 ORDER BY l.row_key, l.column_name, l.event_time DESC, l.chain DESC, l.seq DESC
), now AS (
	SELECT c.row_key, c.column_name, c.value, c.fingerprint FROM sensitive_audit._current_values(tbl) c
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
   AND NOT (n.row_key IS NOT NULL AND l.present AND
			CASE l.protection
				WHEN 'fingerprint' THEN
					CASE WHEN n.fingerprint IS NULL AND n.value IS NOT NULL THEN l.value IS NOT NULL
						 ELSE l.value IS NOT DISTINCT FROM n.fingerprint END
				WHEN 'encrypt' THEN (l.value IS NULL) = (n.value IS NULL)
				WHEN 'erased' THEN (l.value IS NULL) = (n.value IS NULL)
				ELSE l.value IS NOT DISTINCT FROM n.value END)
 ORDER BY 1, 2
$$;

COMMENT ON FUNCTION sensitive_audit.reconcile(regclass) IS
	'where the table''s current tagged values differ from what its history says they are';

/* A database with history records its update (see the 1.0 -> 1.1 script). */
CREATE FUNCTION sensitive_audit._record_update(versions text)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_record_update';
SELECT sensitive_audit._record_update('1.2 -> 1.3')
 WHERE EXISTS (SELECT 1 FROM sensitive_audit.log_entries);
DROP FUNCTION sensitive_audit._record_update(text);
