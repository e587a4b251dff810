-- Every way a table's owner (or a role with fewer rights) could change a
-- tagged value without an entry: each is refused or recorded.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE ROLE bp_owner;
CREATE ROLE bp_nobody;
GRANT CREATE ON SCHEMA public TO bp_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO bp_owner;
SET ROLE bp_owner;
CREATE TABLE acc (id int PRIMARY KEY, iban text, note text);
SELECT sensitive_audit.tag('acc', 'iban');
INSERT INTO acc VALUES (1, 'DE01', 'a'), (2, 'DE02', 'b'), (3, 'DE03', 'c');
CREATE FUNCTION bp_noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
-- how many entries record the given new value of acc.iban
CREATE FUNCTION logged(v text) RETURNS bigint LANGUAGE sql SECURITY INVOKER
	AS $$SELECT count(*) FROM sensitive_audit.log
		  WHERE table_name = 'acc' AND column_name = 'iban' AND new_value = v$$;
RESET ROLE;
GRANT SELECT ON sensitive_audit.log TO bp_owner;
SET ROLE bp_owner;

-- 1. replace the capture trigger by one that never fires
CREATE OR REPLACE TRIGGER sensitive_audit_capture AFTER UPDATE OF iban ON acc
	FOR EACH ROW WHEN (false) EXECUTE FUNCTION sensitive_audit.capture();
CREATE OR REPLACE TRIGGER sensitive_audit_capture_update AFTER UPDATE ON acc
	FOR EACH ROW WHEN (false) EXECUTE FUNCTION sensitive_audit.capture();
UPDATE acc SET iban = 'x1' WHERE id = 1;
SELECT logged('x1') AS x1_logged;

-- 2. rename the capture trigger, then drop it
ALTER TRIGGER sensitive_audit_capture ON acc RENAME TO x;
DROP TRIGGER x ON acc;
UPDATE acc SET iban = 'x2' WHERE id = 1;
SELECT logged('x2') AS x2_logged;

-- 3. a shadowing trigger that calls capture() sorts first
CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON acc
	FOR EACH ROW EXECUTE FUNCTION sensitive_audit.capture();
UPDATE acc SET iban = 'x3' WHERE id = 1;
SELECT logged('x3') AS x3_logged;

-- 4. a BEFORE trigger changes the tagged column the statement did not name
CREATE FUNCTION bp_sneak() RETURNS trigger LANGUAGE plpgsql
	AS $$BEGIN NEW.iban := 'x4'; RETURN NEW; END$$;
CREATE TRIGGER sneak BEFORE UPDATE ON acc FOR EACH ROW EXECUTE FUNCTION bp_sneak();
UPDATE acc SET note = 'z' WHERE id = 2;
SELECT iban FROM acc WHERE id = 2;
SELECT logged('x4') AS x4_logged;
DROP TRIGGER sneak ON acc;

-- 4b. the same through a BEFORE trigger on one partition only
CREATE TABLE bparts (id int PRIMARY KEY, v text, note text) PARTITION BY RANGE (id);
CREATE TABLE bparts_1 PARTITION OF bparts FOR VALUES FROM (0) TO (100);
SELECT sensitive_audit.tag('bparts', 'v');
INSERT INTO bparts VALUES (1, 'v1', 'n');
-- no BEFORE UPDATE trigger yet: the UPDATE trigger lists its columns
SELECT tgrelid::regclass, tgattr, tgqual IS NOT NULL AS has_when FROM pg_trigger
 WHERE tgname = 'sensitive_audit_capture_update' AND tgrelid::regclass::text LIKE 'bparts%' ORDER BY 1;
CREATE FUNCTION bp_sneak_v() RETURNS trigger LANGUAGE plpgsql
	AS $$BEGIN NEW.v := 'x4b'; RETURN NEW; END$$;
CREATE TRIGGER sneak BEFORE UPDATE ON bparts_1 FOR EACH ROW EXECUTE FUNCTION bp_sneak_v();
-- now it compares the final rows
SELECT tgrelid::regclass, tgattr, tgqual IS NOT NULL AS has_when FROM pg_trigger
 WHERE tgname = 'sensitive_audit_capture_update' AND tgrelid::regclass::text LIKE 'bparts%' ORDER BY 1;
UPDATE bparts SET note = 'z';
SELECT operation, table_name, old_value, new_value FROM sensitive_audit.log
 WHERE table_name LIKE 'bparts%' AND operation = 'UPDATE';

-- 5. a generated column that is tagged changes with an untagged one
CREATE TABLE gen (id int PRIMARY KEY, base text, upper_base text GENERATED ALWAYS AS (upper(base)) STORED);
SELECT sensitive_audit.tag('gen', 'upper_base');
INSERT INTO gen VALUES (1, 'a');
UPDATE gen SET base = 'b';
SELECT operation, old_value, new_value FROM sensitive_audit.log
 WHERE table_name = 'gen' AND operation = 'UPDATE';

-- 6. swap primary keys: no tagged column changes, each history moves
UPDATE acc SET id = 1000 WHERE id = 1;
UPDATE acc SET id = 1 WHERE id = 3;
UPDATE acc SET id = 3 WHERE id = 1000;
SELECT operation, row_key, old_value, new_value FROM sensitive_audit.log
 WHERE table_name = 'acc' AND operation = 'REKEY' ORDER BY txid, seq;

-- 7. disable capture in any spelling
ALTER TABLE acc DISABLE TRIGGER sensitive_audit_capture;
ALTER TABLE acc DISABLE TRIGGER USER;
ALTER TABLE acc ENABLE REPLICA TRIGGER sensitive_audit_capture_update;
ALTER TABLE acc DISABLE TRIGGER sensitive_audit_truncate;
DROP TRIGGER sensitive_audit_truncate ON acc;
DROP TRIGGER sensitive_audit_capture_update ON acc;
UPDATE acc SET iban = 'x7' WHERE id = 2;
SELECT logged('x7') AS x7_logged;

-- 8. inheritance: a child's rows would be written through the parent
CREATE TABLE acc_old () INHERITS (acc);
CREATE TABLE acc_other (id int NOT NULL, iban text, note text);
ALTER TABLE acc_other INHERIT acc;

-- 9. SET UNLOGGED: after a crash the rows are gone, the log still has them
ALTER TABLE acc SET UNLOGGED;
SELECT relpersistence FROM pg_class WHERE oid = 'acc'::regclass;

-- 10. temporary and unlogged tables cannot be tagged
CREATE TEMP TABLE tmp_acc (id int, iban text);
SELECT sensitive_audit.tag('tmp_acc', 'iban');
CREATE UNLOGGED TABLE unl_acc (id int, iban text);
SELECT sensitive_audit.tag('unl_acc', 'iban');

-- 11. partitions: detach keeps the table tagged, foreign partitions refused
CREATE TABLE pay (id int, region text, amount text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE pay_eu PARTITION OF pay FOR VALUES IN ('eu');
SELECT sensitive_audit.tag('pay', 'amount');
INSERT INTO pay VALUES (1, 'eu', '10');
ALTER TABLE pay DETACH PARTITION pay_eu;
UPDATE pay_eu SET amount = 'x11';
SELECT operation, table_name, old_value, new_value FROM sensitive_audit.log
 WHERE table_name LIKE 'pay%' AND operation IN ('DETACH', 'UPDATE') ORDER BY txid, seq;
RESET ROLE;
SELECT table_name, column_name FROM sensitive_audit.tagged_columns WHERE table_name LIKE 'pay%' ORDER BY 1;
SET ROLE bp_owner;
-- attaching a table that holds rows records them
CREATE TABLE pay_us (id int, region text, amount text, PRIMARY KEY (id, region));
INSERT INTO pay_us VALUES (7, 'us', '70');
ALTER TABLE pay ATTACH PARTITION pay_us FOR VALUES IN ('us');
SELECT operation, table_name, row_key, new_value FROM sensitive_audit.log
 WHERE table_name LIKE 'pay%' AND operation = 'ATTACH' ORDER BY txid, seq;
TRUNCATE pay_us;
SELECT count(*) AS pay_us_truncate_entries FROM sensitive_audit.log
 WHERE table_name = 'pay_us' AND operation = 'TRUNCATE';
RESET ROLE;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER bp_srv FOREIGN DATA WRAPPER postgres_fdw;
CREATE TABLE pay2 (id int, region text, amount text) PARTITION BY LIST (region);
SELECT sensitive_audit.tag('pay2', 'amount');
CREATE FOREIGN TABLE pay2_far PARTITION OF pay2 FOR VALUES IN ('far') SERVER bp_srv;
CREATE FOREIGN TABLE pay2_near (id int, region text, amount text) SERVER bp_srv;
ALTER TABLE pay2 ATTACH PARTITION pay2_near FOR VALUES IN ('near');
-- a partition made inside CREATE SCHEMA gets its TRUNCATE trigger too
CREATE SCHEMA bp_s CREATE TABLE pay_asia PARTITION OF public.pay FOR VALUES IN ('asia');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'bp_s.pay_asia'::regclass ORDER BY 1;
SET ROLE bp_owner;

-- 12. renames are recorded, and the tag follows the column
ALTER TABLE acc RENAME COLUMN iban TO iban_old;
ALTER TABLE acc ADD COLUMN iban text;
ALTER TABLE acc RENAME TO acc2;
ALTER TABLE acc2 RENAME TO acc;
SELECT operation, table_name, column_name, old_value, new_value FROM sensitive_audit.log
 WHERE operation LIKE 'RENAME%' ORDER BY txid, seq;
RESET ROLE;
SELECT column_name FROM sensitive_audit.tagged_columns WHERE table_name = 'acc';
SET ROLE bp_owner;

-- 13. the meaning of stored values cannot change behind the log
CREATE TYPE risk AS ENUM ('low', 'high');
CREATE TYPE addr AS (street text, city text);
CREATE TABLE cust (id int PRIMARY KEY, r risk, a addr);
SELECT sensitive_audit.tag('cust', 'r', 'a');
ALTER TYPE risk RENAME VALUE 'low' TO 'lowest';
ALTER TYPE addr DROP ATTRIBUTE street;
ALTER TYPE addr RENAME ATTRIBUTE city TO town;
ALTER TYPE risk ADD VALUE 'medium';

-- 14. dropping an audited table by any path leaves an entry
RESET ROLE;
CREATE SCHEMA clinic;
CREATE TABLE clinic.rec (id int PRIMARY KEY, dx text);
SELECT sensitive_audit.tag('clinic.rec', 'dx');
DROP SCHEMA clinic CASCADE;
SELECT operation, table_schema, table_name FROM sensitive_audit.log
 WHERE table_schema = 'clinic' AND operation LIKE 'DROP%';
SELECT count(*) AS orphans FROM sensitive_audit.tag_info WHERE tbl::text LIKE '%rec';
-- a tagged column cannot be dropped, even by CASCADE, until it is untagged
CREATE TABLE drops (id int PRIMARY KEY, secret text, other text);
SELECT sensitive_audit.tag('drops', 'secret');
ALTER TABLE drops DROP COLUMN secret;
ALTER TABLE drops DROP COLUMN secret CASCADE;
-- after untag() it goes, and its catalog row with it
SELECT sensitive_audit.untag('drops', 'secret');
ALTER TABLE drops DROP COLUMN secret;
SELECT count(*) AS secret_still_tagged FROM sensitive_audit.tag_info WHERE tbl = 'drops'::regclass;
SELECT operation, table_name, column_name FROM sensitive_audit.log
 WHERE table_name = 'drops' ORDER BY txid, seq;

-- 15. a role with no rights can neither see the audit schema nor tag
SET ROLE bp_nobody;
PREPARE p AS SELECT 1 FROM sensitive_audit.log_entries;
SELECT sensitive_audit.tag('acc'::regclass::oid::regclass, 'note');
CREATE TEMP TABLE mine (v text);
SELECT sensitive_audit.tag('mine', 'v');
RESET ROLE;

-- 16. event_time is when the row changed, not when the statement began
CREATE TABLE slow (id int PRIMARY KEY, v text);
SELECT sensitive_audit.tag('slow', 'v');
INSERT INTO slow SELECT 1, 'a' FROM pg_sleep(0.3);
SELECT event_time >= statement_timestamp() - interval '1 hour'
	   AND event_time - txn.started >= interval '0.25 s' AS after_sleep
  FROM sensitive_audit.log l,
	   (SELECT max(event_time) AS started FROM sensitive_audit.log WHERE table_name = 'slow' AND operation = 'TAG') txn
 WHERE l.table_name = 'slow' AND l.operation = 'INSERT';

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();

-- clean up the roles (other tests' databases share them)
DROP OWNED BY bp_owner, bp_nobody CASCADE;
DROP ROLE bp_owner, bp_nobody;
