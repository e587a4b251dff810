-- Reads of the audit log, and of tagged columns where the owner asks, are
-- READ entries: one per statement and relation, with the columns read and
-- the rows returned.  The event worker writes them (the test cluster
-- preloads the library), a moment after the read; the checks below wait.
\set SHOW_CONTEXT never
CREATE ROLE regress_rd_owner;
CREATE ROLE regress_rd_auditor;
GRANT CREATE ON SCHEMA public TO regress_rd_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_rd_owner, regress_rd_auditor;
GRANT SELECT ON sensitive_audit.log TO regress_rd_auditor;
SELECT clock_timestamp() AS start \gset
-- the READ entries since the start (these checks are not reads worth recording themselves)
CREATE FUNCTION pg_temp.reads(since timestamptz) RETURNS TABLE (role text, table_name text, read jsonb, has_query_id boolean)
LANGUAGE sql SET sensitive_audit.log_reads = off AS $$
	SELECT c.effective_role, c.table_name, e.new_value::jsonb - 'query_id', e.new_value::jsonb ? 'query_id'
	  FROM sensitive_audit.log_entries e JOIN sensitive_audit.log_contexts c ON c.id = e.context
	 WHERE c.operation = 'READ' AND e.event_time >= since
	 ORDER BY e.event_time, e.seq $$;
-- wait (up to 20 s) until there are n of them
CREATE FUNCTION pg_temp.settle(since timestamptz, n int) RETURNS boolean
LANGUAGE plpgsql SET sensitive_audit.log_reads = off AS $$
BEGIN
	FOR i IN 1..200 LOOP
		IF (SELECT count(*) FROM pg_temp.reads(since)) >= n THEN RETURN true; END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN false;
END $$;

-- reads of the log are recorded unless a superuser turns sensitive_audit.log_reads off: it
-- is on as the server starts
SELECT setting, boot_val, context FROM pg_catalog.pg_settings WHERE name = 'sensitive_audit.log_reads';
-- reads of the log by an auditor: through the view, one entry for the view
SET ROLE regress_rd_auditor;
SELECT count(*) >= 0 AS counted FROM sensitive_audit.log;
SELECT operation FROM sensitive_audit.log WHERE false;
-- a statement that fails after reading is recorded too (as failed)
\set VERBOSITY sqlstate
SELECT new_value::int FROM sensitive_audit.log WHERE new_value IS NOT NULL AND new_value !~ '^[0-9]+$';
\set VERBOSITY default
RESET ROLE;
SELECT pg_temp.settle(:'start', 3) AS settled;
SELECT * FROM pg_temp.reads(:'start') WHERE role = 'regress_rd_auditor';

-- in a read-only transaction, or one that rolls back, the read is recorded all the same
SELECT clock_timestamp() AS t1 \gset
BEGIN READ ONLY;
SELECT count(*) >= 0 AS counted FROM sensitive_audit.log_entries;
COMMIT;
BEGIN;
SELECT count(*) >= 0 AS counted FROM sensitive_audit.log_contexts;
ROLLBACK;
SELECT pg_temp.settle(:'t1', 2) AS settled;
SELECT * FROM pg_temp.reads(:'t1');

-- reads of a table's tagged columns, once its owner turns it on
SELECT clock_timestamp() AS t2 \gset
SET ROLE regress_rd_owner;
CREATE TABLE rd_patients (id int PRIMARY KEY, name text, ssn text);
INSERT INTO rd_patients VALUES (1, 'ann', '111'), (2, 'bob', '222');
SELECT sensitive_audit.tag('rd_patients', 'ssn');
SELECT name FROM rd_patients;                         -- not yet recorded
SELECT sensitive_audit.audit_reads('rd_patients', true);
SELECT sensitive_audit.audit_reads('rd_patients', true);   -- already on: nothing recorded
SELECT name FROM rd_patients;                         -- no tagged column: not recorded
SELECT ssn FROM rd_patients WHERE id = 1;
SELECT p FROM rd_patients p;                          -- a whole row reads every column
COPY rd_patients TO stdout;
COPY rd_patients (name) TO stdout;                    -- not recorded
COPY (SELECT id, ssn FROM rd_patients) TO stdout;
SELECT sensitive_audit.audit_reads('rd_patients', false);
SELECT ssn FROM rd_patients;                          -- no longer recorded
RESET ROLE;
SELECT pg_temp.settle(:'t2', 4) AS settled;
SELECT * FROM pg_temp.reads(:'t2') WHERE table_name = 'rd_patients';
SELECT operation, table_name, old_value, new_value FROM sensitive_audit.log
 WHERE operation = 'AUDIT READS' ORDER BY seq;

-- a partition of a read-audited table, read directly, is a read of it
SELECT clock_timestamp() AS t3 \gset
SET ROLE regress_rd_owner;
CREATE TABLE rd_visits (id int PRIMARY KEY, note text) PARTITION BY RANGE (id);
CREATE TABLE rd_visits_1 PARTITION OF rd_visits FOR VALUES FROM (0) TO (100);
INSERT INTO rd_visits VALUES (1, 'private');
SELECT sensitive_audit.tag('rd_visits', 'note');
SELECT sensitive_audit.audit_reads('rd_visits', true);
SELECT note FROM rd_visits_1;
SELECT note FROM rd_visits;
RESET ROLE;
SELECT pg_temp.settle(:'t3', 2) AS settled;
SELECT * FROM pg_temp.reads(:'t3') WHERE table_name LIKE 'rd_visits%';
SET ROLE regress_rd_owner;
SELECT sensitive_audit.untag('rd_visits', 'note');
DROP TABLE rd_visits;
RESET ROLE;

-- no way around it: a read inside a foreign key's cascade (user code runs there), and a MERGE
-- whose only action is DO NOTHING (it reads its target and changes nothing)
SELECT clock_timestamp() AS t6 \gset
CREATE TABLE rd_parent (id int PRIMARY KEY);
CREATE TABLE rd_child (id int REFERENCES rd_parent ON DELETE CASCADE);
CREATE FUNCTION pg_temp.peek() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM count(*) FROM sensitive_audit.log_contexts;
	RETURN OLD;
END $$;
CREATE TRIGGER peek BEFORE DELETE ON rd_child FOR EACH ROW EXECUTE FUNCTION pg_temp.peek();
INSERT INTO rd_parent VALUES (1);
INSERT INTO rd_child VALUES (1);
DELETE FROM rd_parent;
GRANT SELECT ON sensitive_audit.log_entries TO regress_rd_auditor;
SET ROLE regress_rd_auditor;
MERGE INTO sensitive_audit.log_entries t USING (SELECT 1 AS one) s ON true
 WHEN MATCHED AND t.seq < 0 THEN DO NOTHING;
RESET ROLE;
REVOKE SELECT ON sensitive_audit.log_entries FROM regress_rd_auditor;
DROP TABLE rd_child, rd_parent;
SELECT pg_temp.settle(:'t6', 2) AS settled;
SELECT role, table_name, read - 'rows' AS read FROM pg_temp.reads(:'t6') ORDER BY table_name;

-- bad input: not the owner, no tagged columns
SET ROLE regress_rd_auditor;
SELECT sensitive_audit.audit_reads('rd_patients', true);
RESET ROLE;
CREATE TABLE untagged (id int);
SELECT sensitive_audit.audit_reads('untagged', true);

-- only a superuser may stop recording reads of the log
SET ROLE regress_rd_auditor;
SET sensitive_audit.log_reads = off;
RESET ROLE;
SET sensitive_audit.log_reads = off;
SELECT clock_timestamp() AS t4 \gset
SELECT count(*) >= 0 AS read_while_off FROM sensitive_audit.log;
SELECT pg_temp.settle(:'t4', 1) AS recorded_while_off;

SELECT bool_and(ok) AS verified FROM sensitive_audit.verify();
DROP TABLE untagged;
SET ROLE regress_rd_owner;
SELECT sensitive_audit.untag('rd_patients', 'ssn');
DROP TABLE rd_patients;
RESET ROLE;
REVOKE ALL ON SCHEMA sensitive_audit FROM regress_rd_owner, regress_rd_auditor;
REVOKE ALL ON sensitive_audit.log FROM regress_rd_auditor;
REVOKE CREATE ON SCHEMA public FROM regress_rd_owner;
RESET sensitive_audit.log_reads;
DROP ROLE regress_rd_owner, regress_rd_auditor;
