-- An unprivileged writer is captured without any grant on the audit
-- schema, and can neither read, forge nor rewrite the history.  PUBLIC has
-- nothing on the audit schema: whoever tags or reads is granted USAGE (the
-- writer below is too, to show that the schema is not its only defence).
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE ROLE regress_sa_owner;
CREATE ROLE regress_sa_writer;
CREATE ROLE regress_sa_auditor;
CREATE ROLE regress_sa_nobody;
GRANT CREATE ON SCHEMA public TO regress_sa_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_sa_owner, regress_sa_writer, regress_sa_auditor;

-- a role with no grant sees nothing of the audit schema, and cannot lock
-- the log (which would stall committers) or tag anything
SET ROLE regress_sa_nobody;
SELECT count(*) FROM sensitive_audit.log;
BEGIN;
PREPARE p AS SELECT 1 FROM sensitive_audit.log_entries;
ROLLBACK;
SELECT sensitive_audit.tag('pg_class', 'relname');
CREATE TEMP TABLE mine (v text);
SELECT sensitive_audit.tag('mine', 'v');
RESET ROLE;
DROP TABLE mine;

SET ROLE regress_sa_owner;
CREATE TABLE staff (id int PRIMARY KEY, name text, salary numeric);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON staff TO regress_sa_writer;
-- the table's owner may tag its columns
SELECT sensitive_audit.tag('staff', 'salary');
RESET ROLE;

-- a writer with DML rights only
SET ROLE regress_sa_writer;
INSERT INTO staff VALUES (1, 'ann', 1000);
UPDATE staff SET salary = 2000 WHERE id = 1;
-- cannot read, write or verify the log
SELECT count(*) FROM sensitive_audit.log;
INSERT INTO sensitive_audit.log (chain, seq, txid, event_time, operation, session_role, effective_role,
	backend_pid, prev_hash, hash, format)
	VALUES (0, 1, '1', now(), 'INSERT', 'x', 'x', 1, '\x00', '\x00', 1);
UPDATE sensitive_audit.log SET new_value = '1';
DELETE FROM sensitive_audit.log;
TRUNCATE sensitive_audit.log;
SELECT count(*) FROM sensitive_audit.log_entries;
SELECT count(*) FROM sensitive_audit.log_contexts;
UPDATE sensitive_audit.log_entries SET new_value = '1';
SELECT * FROM sensitive_audit.verify();
SELECT sensitive_audit.verify_or_raise();
SELECT sensitive_audit._sync_triggers('staff');
SELECT * FROM sensitive_audit.tag_info;
-- cannot change what is audited on a table it does not own
SELECT sensitive_audit.untag('staff', 'salary');
SELECT sensitive_audit.tag('staff', 'name');
ALTER TABLE staff DISABLE TRIGGER sensitive_audit_capture;
DROP TRIGGER sensitive_audit_capture ON staff;
TRUNCATE staff;
RESET ROLE;

SELECT operation, column_name, old_value, new_value, session_role, effective_role
  FROM sensitive_audit.log WHERE table_name = 'staff' ORDER BY txid, seq;

-- inside a SECURITY DEFINER function the effective role is the definer's,
-- while the session role still names who connected
CREATE FUNCTION raise_salary(int) RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, public
	AS 'UPDATE public.staff SET salary = salary + $1';
ALTER FUNCTION raise_salary(int) OWNER TO regress_sa_owner;
GRANT EXECUTE ON FUNCTION raise_salary(int) TO regress_sa_writer;
SET SESSION AUTHORIZATION regress_sa_writer;
INSERT INTO staff VALUES (2, 'bob', 500);
SELECT raise_salary(1);
RESET SESSION AUTHORIZATION;
SELECT operation, row_key, new_value, session_role, effective_role
  FROM sensitive_audit.log WHERE table_name = 'staff' AND new_value IN ('500', '501') ORDER BY txid, seq;

-- reading the log and verifying take explicit grants
GRANT SELECT ON sensitive_audit.log TO regress_sa_auditor;
GRANT EXECUTE ON FUNCTION sensitive_audit.verify() TO regress_sa_auditor;
SET ROLE regress_sa_auditor;
SELECT count(*) > 0 AS can_read FROM sensitive_audit.log WHERE table_name = 'staff';
SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
UPDATE sensitive_audit.log SET new_value = '1';
-- the view is the interface: its storage takes grants of its own
SELECT count(*) FROM sensitive_audit.log_entries;
RESET ROLE;

-- the owner, too, may only untag through untag(), which is recorded
SET ROLE regress_sa_owner;
ALTER TABLE staff DISABLE TRIGGER sensitive_audit_capture;
ALTER TABLE staff DISABLE TRIGGER USER;
ALTER TABLE staff ENABLE TRIGGER sensitive_audit_capture;
SELECT sensitive_audit.untag('staff', 'salary');
RESET ROLE;
SELECT operation, column_name, session_role FROM sensitive_audit.log
 WHERE table_name = 'staff' AND operation IN ('TAG', 'UNTAG') ORDER BY txid, seq;

-- tag() and untag() do part of their work as the extension's owner: a
-- caller's search_path must not slip an operator of theirs into it
CREATE SCHEMA regress_evil AUTHORIZATION regress_sa_owner;
SET ROLE regress_sa_owner;
CREATE FUNCTION regress_evil.eq(regclass, regclass) RETURNS boolean LANGUAGE sql
	AS $$ SELECT pg_catalog.set_config('regress.evil_ran_as', current_user, false) IS NOT NULL
			 AND $1::oid OPERATOR(pg_catalog.=) $2::oid $$;
CREATE OPERATOR regress_evil.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = regress_evil.eq);
SET search_path = regress_evil, pg_catalog, public;
SELECT sensitive_audit.tag('staff', 'name');
SELECT sensitive_audit.untag('staff', 'name');
RESET search_path;
SELECT current_setting('regress.evil_ran_as', true) AS evil_ran_as;
DROP SCHEMA regress_evil CASCADE;
RESET ROLE;

DROP FUNCTION raise_salary(int);
DROP TABLE staff;
REVOKE ALL ON sensitive_audit.log FROM regress_sa_auditor;
REVOKE ALL ON FUNCTION sensitive_audit.verify() FROM regress_sa_auditor;
REVOKE CREATE ON SCHEMA public FROM regress_sa_owner;
REVOKE USAGE ON SCHEMA sensitive_audit FROM regress_sa_owner, regress_sa_writer, regress_sa_auditor;
DROP ROLE regress_sa_nobody;
DROP ROLE regress_sa_owner;
DROP ROLE regress_sa_writer;
DROP ROLE regress_sa_auditor;
