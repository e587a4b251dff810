-- reconcile() finds where a table's current values and its history differ;
-- baseline() brings rows that predate tagging into the history.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE TABLE ledger (id int PRIMARY KEY, dropped int, amount numeric, memo text, note text);
ALTER TABLE ledger DROP COLUMN dropped;	-- attribute numbers no longer follow SELECT *
INSERT INTO ledger VALUES (1, 10, 'a', 'n'), (2, 20, 'b', 'n');
-- tagging a table that holds rows says so
SELECT sensitive_audit.tag('ledger', 'amount', 'memo');
-- before a baseline, every row lacks a history
SELECT * FROM sensitive_audit.reconcile('ledger');
SELECT sensitive_audit.baseline('ledger');
SELECT operation, row_key, column_name, new_value FROM sensitive_audit.log
 WHERE table_name = 'ledger' AND operation = 'BASELINE' ORDER BY txid, seq;
SELECT count(*) AS disagreements FROM sensitive_audit.reconcile('ledger');

-- ordinary changes keep history and table in agreement, key changes too
INSERT INTO ledger VALUES (3, 30, 'c', 'n');
UPDATE ledger SET amount = 11 WHERE id = 1;
UPDATE ledger SET note = 'only untagged' WHERE id = 2;
UPDATE ledger SET id = 4 WHERE id = 3;
UPDATE ledger SET id = 3 WHERE id = 2;
DELETE FROM ledger WHERE id = 1;
SELECT count(*) AS disagreements FROM sensitive_audit.reconcile('ledger');

-- a superuser writes behind the log's back
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER TABLE ledger DISABLE TRIGGER USER;
UPDATE ledger SET amount = 999 WHERE id = 3;
INSERT INTO ledger VALUES (9, 90, 'ghost', 'n');
DELETE FROM ledger WHERE id = 4;
ALTER TABLE ledger ENABLE ALWAYS TRIGGER sensitive_audit_capture;
ALTER TABLE ledger ENABLE ALWAYS TRIGGER sensitive_audit_capture_update;
ALTER TABLE ledger ENABLE ALWAYS TRIGGER sensitive_audit_truncate;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;
SELECT * FROM sensitive_audit.reconcile('ledger');

-- a partitioned table: every partition's rows
CREATE TABLE parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (10);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (10) TO (20);
SELECT sensitive_audit.tag('parts', 'v');
INSERT INTO parts VALUES (1, 'a'), (11, 'b');
UPDATE parts SET id = 12 WHERE id = 1;	-- moves the row to the other partition
SELECT count(*) AS disagreements FROM sensitive_audit.reconcile('parts');
DROP TABLE parts;

-- bad input
SELECT * FROM sensitive_audit.reconcile('pg_class');
CREATE TABLE untagged (id int);
SELECT * FROM sensitive_audit.reconcile('untagged');
SELECT sensitive_audit.baseline('untagged');
CREATE ROLE regress_sa_reader;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_sa_reader;
SET ROLE regress_sa_reader;
SELECT * FROM sensitive_audit.reconcile('ledger');
SELECT sensitive_audit.baseline('ledger');
RESET ROLE;
GRANT SELECT ON ledger TO regress_sa_reader;
SET ROLE regress_sa_reader;
SELECT * FROM sensitive_audit.reconcile('ledger');
RESET ROLE;
REVOKE ALL ON ledger FROM regress_sa_reader;
REVOKE USAGE ON SCHEMA sensitive_audit FROM regress_sa_reader;
DROP ROLE regress_sa_reader;
DROP TABLE untagged;

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
