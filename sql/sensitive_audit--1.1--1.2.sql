/* sensitive_audit--1.1--1.2.sql — update from 1.1 to 1.2 (also run by CREATE EXTENSION) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sensitive_audit UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.2 makes the log provable to someone who does not trust the database
 * (DESIGN.md, "Beyond a chain"; docs/FORMAT.md, section 9):
 *  - a log id, made here and kept through dump and restore;
 *  - per-chain RFC 9162 Merkle trees, whose complete subtrees at levels 8,
 *    16, 24, ... are stored as they are first needed (never when an audited
 *    change commits);
 *  - checkpoint_body(), the unsigned C2SP checkpoint of the committed state,
 *    which a signer outside the database signs;
 *  - checkpoints, insert-only, stored by add_checkpoint() after checking
 *    them against the trees, and held to by verify();
 *  - inclusion and consistency proofs as jsonb.
 * The functions read and write the tables below SQL, like capture does, so
 * their privileges are EXECUTE on them (none for PUBLIC) and nothing on the
 * tables.
 */

/* One row: the id a checkpoint's origin names this log by. */
CREATE TABLE sensitive_audit.log_info (
	log_id			text		NOT NULL,
	created_at		timestamptz NOT NULL
);
REVOKE ALL ON sensitive_audit.log_info FROM PUBLIC;
INSERT INTO sensitive_audit.log_info (log_id, created_at)
VALUES (pg_catalog.gen_random_uuid()::pg_catalog.text, pg_catalog.now());
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.log_info', '');
COMMENT ON TABLE sensitive_audit.log_info IS
	'the log id, made by CREATE EXTENSION and kept by dump and restore';

/* Complete subtrees of each chain's tree at levels 8, 16, 24, ... */
CREATE TABLE sensitive_audit.tree_nodes (
	chain			integer		NOT NULL,
	level			smallint	NOT NULL,
	idx				bigint		NOT NULL,
	hash			bytea		NOT NULL,
	CONSTRAINT tree_nodes_pkey PRIMARY KEY (chain, level, idx)
);
REVOKE ALL ON sensitive_audit.tree_nodes FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.tree_nodes', '');
COMMENT ON TABLE sensitive_audit.tree_nodes IS
	'stored complete subtrees of the chains'' Merkle trees, checked by verify()';

/* What signers signed, as they gave it. */
CREATE TABLE sensitive_audit.checkpoints (
	id				bigint		NOT NULL,
	added_at		timestamptz NOT NULL,
	added_by		text		NOT NULL,
	log_id			text		NOT NULL,
	total			bigint		NOT NULL,
	note			text		NOT NULL,
	CONSTRAINT checkpoints_pkey PRIMARY KEY (id)
);
REVOKE ALL ON sensitive_audit.checkpoints FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.checkpoints', '');
COMMENT ON TABLE sensitive_audit.checkpoints IS
	'signed checkpoints of the log, insert-only; verify() holds every chain to each';

/* Insert-only like the log: the same guard (a restore loads them while empty). */
CREATE TRIGGER log_guard
	BEFORE INSERT OR UPDATE OR DELETE ON sensitive_audit.tree_nodes
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE TRIGGER log_guard_truncate
	BEFORE TRUNCATE ON sensitive_audit.tree_nodes
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
ALTER TABLE sensitive_audit.tree_nodes ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.tree_nodes ENABLE ALWAYS TRIGGER log_guard_truncate;
CREATE TRIGGER log_guard
	BEFORE INSERT OR UPDATE OR DELETE ON sensitive_audit.checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE TRIGGER log_guard_truncate
	BEFORE TRUNCATE ON sensitive_audit.checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
ALTER TABLE sensitive_audit.checkpoints ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.checkpoints ENABLE ALWAYS TRIGGER log_guard_truncate;

/* The log id is never updated or deleted; a restore's row replaces CREATE EXTENSION's. */
CREATE TRIGGER log_guard
	BEFORE UPDATE OR DELETE ON sensitive_audit.log_info
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE TRIGGER log_guard_truncate
	BEFORE TRUNCATE ON sensitive_audit.log_info
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
ALTER TABLE sensitive_audit.log_info ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.log_info ENABLE ALWAYS TRIGGER log_guard_truncate;

CREATE FUNCTION sensitive_audit.log_info_restore()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sensitive_audit_log_info_restore';
REVOKE ALL ON FUNCTION sensitive_audit.log_info_restore() FROM PUBLIC;

CREATE TRIGGER log_info_restore
	BEFORE INSERT ON sensitive_audit.log_info
	FOR EACH ROW EXECUTE FUNCTION sensitive_audit.log_info_restore();
ALTER TABLE sensitive_audit.log_info ENABLE ALWAYS TRIGGER log_info_restore;

/* ------------------------------------------------------------------------
 * Checkpoints and proofs (src/trees.cpp).
 */
CREATE FUNCTION sensitive_audit.checkpoint_body()
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_checkpoint_body';
REVOKE ALL ON FUNCTION sensitive_audit.checkpoint_body() FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.checkpoint_body() IS
	'the unsigned C2SP checkpoint body of the committed state of the log';

CREATE FUNCTION sensitive_audit.add_checkpoint(signed text)
RETURNS bigint
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_add_checkpoint';
REVOKE ALL ON FUNCTION sensitive_audit.add_checkpoint(text) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.add_checkpoint(text) IS
	'store a signed checkpoint after checking that it matches the log; returns its id';

CREATE FUNCTION sensitive_audit.inclusion_proof(chain integer, seq bigint, tree_size bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_inclusion_proof';
REVOKE ALL ON FUNCTION sensitive_audit.inclusion_proof(integer, bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.inclusion_proof(integer, bigint, bigint) IS
	'RFC 9162 inclusion proof of an entry in its chain''s tree (default: at the chain''s size)';

CREATE FUNCTION sensitive_audit.consistency_proof(chain integer, old_size bigint, new_size bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_consistency_proof';
REVOKE ALL ON FUNCTION sensitive_audit.consistency_proof(integer, bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION sensitive_audit.consistency_proof(integer, bigint, bigint) IS
	'RFC 9162 consistency proof between two sizes of a chain''s tree (default: its size)';

/* A database with history records its update (see the 1.0 -> 1.1 script). */
CREATE FUNCTION sensitive_audit._record_update(versions text)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sensitive_audit_record_update';
SELECT sensitive_audit._record_update('1.1 -> 1.2')
 WHERE EXISTS (SELECT 1 FROM sensitive_audit.log_entries);
DROP FUNCTION sensitive_audit._record_update(text);

/* ------------------------------------------------------------------------
 * Guardrails on tagged columns (src/policy.cpp).  One policy per column;
 * set_policy() replaces it whole, drop_policy() removes it, both recorded
 * as POLICY entries; only the table's owner may call them.
 */
CREATE TABLE sensitive_audit.policy_info (
	tbl				regclass	NOT NULL,
	column_name		name		NOT NULL,
	allowed_roles	name[],
	max_rows_per_statement bigint,
	max_rows_per_hour bigint,
	action			text		NOT NULL,
	set_at			timestamptz NOT NULL,
	set_by			text		NOT NULL,
	PRIMARY KEY (tbl, column_name)
);
REVOKE ALL ON sensitive_audit.policy_info FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.policy_info', '');

CREATE FUNCTION sensitive_audit.set_policy(tbl regclass, col name, allowed_roles name[] DEFAULT NULL,
										   max_rows_per_statement bigint DEFAULT NULL,
										   max_rows_per_hour bigint DEFAULT NULL,
										   action text DEFAULT 'block')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_set_policy';
COMMENT ON FUNCTION sensitive_audit.set_policy(regclass, name, name[], bigint, bigint, text) IS
	'set the whole guardrail of a tagged column: allowed roles, rows per statement, rows per hour per role, block or alert';

CREATE FUNCTION sensitive_audit.drop_policy(tbl regclass, col name)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_drop_policy';
COMMENT ON FUNCTION sensitive_audit.drop_policy(regclass, name) IS
	'remove the guardrail of a tagged column';

/* The policies of the tables the reader owns (all of them for a superuser). */
CREATE VIEW sensitive_audit.policies WITH (security_barrier) AS
SELECT p.tbl, p.column_name, p.allowed_roles, p.max_rows_per_statement, p.max_rows_per_hour,
	   p.action, p.set_at, p.set_by
  FROM sensitive_audit.policy_info p
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.tbl
 WHERE pg_catalog.pg_has_role(c.relowner, 'USAGE');
GRANT SELECT ON sensitive_audit.policies TO PUBLIC;
COMMENT ON VIEW sensitive_audit.policies IS
	'the guardrails on tagged columns of the tables the reader owns; auditors may be granted SELECT on policy_info';

/* ------------------------------------------------------------------------
 * Reads (src/reads.cpp): every statement that reads the log is a READ
 * entry; so is every statement that reads tagged columns of a table whose
 * owner turned it on with audit_reads().
 */
CREATE TABLE sensitive_audit.read_audit_info (
	tbl				regclass	NOT NULL PRIMARY KEY,
	set_at			timestamptz NOT NULL,
	set_by			text		NOT NULL
);
REVOKE ALL ON sensitive_audit.read_audit_info FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('sensitive_audit.read_audit_info', '');

CREATE FUNCTION sensitive_audit.audit_reads(tbl regclass, "on" boolean)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'sensitive_audit_audit_reads';
COMMENT ON FUNCTION sensitive_audit.audit_reads(regclass, boolean) IS
	'record (or stop recording) every statement that reads tagged columns of the table';
