-- The log is insert-only for everyone, the superuser included; capture
-- cannot be switched off silently.
\set SHOW_CONTEXT never
CREATE TABLE cards (id int PRIMARY KEY, pan text, holder text);
SELECT sensitive_audit.tag('cards', 'pan');
INSERT INTO cards VALUES (1, '4111', 'ann');

UPDATE sensitive_audit.log SET new_value = 'x';
DELETE FROM sensitive_audit.log;
TRUNCATE sensitive_audit.log;
INSERT INTO sensitive_audit.log SELECT * FROM sensitive_audit.log LIMIT 1;
COPY sensitive_audit.log FROM STDIN;
\.
ALTER TABLE sensitive_audit.log DISABLE TRIGGER log_guard;
ALTER TABLE sensitive_audit.log ADD COLUMN extra int;
ALTER TABLE sensitive_audit.log DROP CONSTRAINT log_pkey;
DROP TABLE sensitive_audit.log;

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
INSERT INTO sensitive_audit.log SELECT * FROM sensitive_audit.log WHERE FALSE;
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
