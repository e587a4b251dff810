-- The log is insert-only for everyone, the superuser included; capture
-- cannot be switched off silently.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE TABLE cards (id int PRIMARY KEY, pan text, holder text);
SELECT sensitive_audit.tag('cards', 'pan');
INSERT INTO cards VALUES (1, '4111', 'ann');

-- the log as users see it (a view over the two storage tables)
UPDATE sensitive_audit.log SET new_value = 'x';
DELETE FROM sensitive_audit.log;
TRUNCATE sensitive_audit.log;
INSERT INTO sensitive_audit.log SELECT * FROM sensitive_audit.log LIMIT 1;
COPY sensitive_audit.log (chain, seq) FROM STDIN;
1	1000
\.
ALTER VIEW sensitive_audit.log RENAME COLUMN new_value TO nv;
-- a view that would hide every entry
CREATE OR REPLACE VIEW sensitive_audit.log AS
SELECT e.chain, e.seq, e.txid, e.event_time,
	   c.operation, c.table_schema, c.table_name, c.column_name,
	   e.row_key, c.row_key_source, e.old_value, e.new_value, c.value_type,
	   c.session_role, c.effective_role, c.application_name, c.client_addr,
	   e.backend_pid, e.prev_hash, e.hash, e.format, e.context, NULL::text AS protection
  FROM sensitive_audit.log_entries e
  LEFT JOIN sensitive_audit.log_contexts c ON c.id = e.context
 WHERE false;
-- the same through the view's rewrite rule, and triggers or policies on the log
CREATE OR REPLACE RULE "_RETURN" AS ON SELECT TO sensitive_audit.log DO INSTEAD
SELECT e.chain, e.seq, e.txid, e.event_time,
	   c.operation, c.table_schema, c.table_name, c.column_name,
	   e.row_key, c.row_key_source, e.old_value, e.new_value, c.value_type,
	   c.session_role, c.effective_role, c.application_name, c.client_addr,
	   e.backend_pid, e.prev_hash, e.hash, e.format, e.context, NULL::text AS protection
  FROM sensitive_audit.log_entries e
  LEFT JOIN sensitive_audit.log_contexts c ON c.id = e.context
 WHERE false;
CREATE TRIGGER hide BEFORE INSERT ON sensitive_audit.log_entries
	FOR EACH ROW EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE POLICY hide ON sensitive_audit.log_contexts USING (false);
SELECT count(*) > 0 AS still_shows_entries FROM sensitive_audit.log;
DROP VIEW sensitive_audit.log;
-- its storage, each statement refused even when it matches no row
UPDATE sensitive_audit.log_entries SET new_value = 'x' WHERE false;
DELETE FROM sensitive_audit.log_entries;
TRUNCATE sensitive_audit.log_entries;
INSERT INTO sensitive_audit.log_entries SELECT * FROM sensitive_audit.log_entries LIMIT 1;
COPY sensitive_audit.log_entries FROM STDIN;
\.
UPDATE sensitive_audit.log_contexts SET table_name = 'x' WHERE false;
DELETE FROM sensitive_audit.log_contexts;
TRUNCATE sensitive_audit.log_contexts;
INSERT INTO sensitive_audit.log_contexts SELECT * FROM sensitive_audit.log_contexts LIMIT 1;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER log_guard;
ALTER TABLE sensitive_audit.log_entries ADD COLUMN extra int;
ALTER TABLE sensitive_audit.log_entries DROP CONSTRAINT log_entries_pkey;
ALTER TABLE sensitive_audit.log_contexts DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.log_contexts DROP CONSTRAINT log_contexts_pkey;
DROP TRIGGER log_guard ON sensitive_audit.log_entries;
DROP TRIGGER log_guard_truncate ON sensitive_audit.log_contexts;
DROP TRIGGER log_guard_view ON sensitive_audit.log;
DROP TABLE sensitive_audit.log_entries;
DROP TABLE sensitive_audit.log_contexts;

-- capture triggers stay on
ALTER TABLE cards DISABLE TRIGGER sensitive_audit_capture;
ALTER TABLE cards DISABLE TRIGGER ALL;
ALTER TABLE cards ENABLE REPLICA TRIGGER sensitive_audit_capture;
ALTER TABLE cards DISABLE TRIGGER sensitive_audit_truncate;
DROP TRIGGER sensitive_audit_capture ON cards;
DROP TRIGGER sensitive_audit_truncate ON cards;
ALTER TABLE cards DROP COLUMN pan;
ALTER TABLE cards DROP COLUMN pan CASCADE;
-- an untagged column drops as usual
ALTER TABLE cards DROP COLUMN holder;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'cards'::regclass ORDER BY tgname;

-- dropping an audited table is recorded in the chain
DROP TABLE cards;
SELECT operation, table_schema, table_name FROM sensitive_audit.log
 WHERE table_name = 'cards' AND operation NOT IN ('INSERT') ORDER BY txid, seq;

-- the extension cannot be dropped while it holds history
DROP EXTENSION sensitive_audit;
DROP SCHEMA sensitive_audit CASCADE;
SET sensitive_audit.allow_drop = on;
BEGIN;
SET LOCAL client_min_messages = warning;
DROP EXTENSION sensitive_audit CASCADE;
SELECT count(*) FROM pg_extension WHERE extname = 'sensitive_audit';
ROLLBACK;
RESET sensitive_audit.allow_drop;

-- a restore may insert (the rows are then verified like any others)
SET sensitive_audit.restoring = on;
BEGIN;
INSERT INTO sensitive_audit.log_contexts SELECT * FROM sensitive_audit.log_contexts WHERE FALSE;
INSERT INTO sensitive_audit.log_entries SELECT * FROM sensitive_audit.log_entries WHERE FALSE;
-- but never through the view
INSERT INTO sensitive_audit.log SELECT * FROM sensitive_audit.log LIMIT 1;
ROLLBACK;
RESET sensitive_audit.restoring;

-- these settings are superuser-only
CREATE ROLE regress_sa_user;
SET ROLE regress_sa_user;
SET sensitive_audit.allow_drop = on;
SET sensitive_audit.restoring = on;
SET sensitive_audit.chains = 1;
RESET ROLE;
DROP ROLE regress_sa_user;

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
