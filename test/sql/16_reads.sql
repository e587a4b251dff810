-- Reads of the audit log, and of tagged columns where the owner asks, are
-- READ entries: one per statement and relation, with the columns read and
-- the rows returned.
\set SHOW_CONTEXT never
CREATE ROLE regress_rd_owner;
CREATE ROLE regress_rd_auditor;
GRANT CREATE ON SCHEMA public TO regress_rd_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_rd_owner, regress_rd_auditor;
GRANT SELECT ON sensitive_audit.log TO regress_rd_auditor;
CREATE FUNCTION pg_temp.reads(since bigint) RETURNS TABLE (role text, table_name text, read jsonb, has_query_id boolean)
LANGUAGE sql AS $$
	SELECT l.effective_role, l.table_name, l.new_value::jsonb - 'query_id', l.new_value::jsonb ? 'query_id'
	  FROM sensitive_audit.log_entries e JOIN sensitive_audit.log_contexts c ON c.id = e.context
	  JOIN LATERAL (SELECT c.effective_role, c.table_name, e.new_value) l ON true
	 WHERE c.operation = 'READ' AND e.txid::text::bigint >= since
	 ORDER BY e.event_time, e.seq $$;
SELECT txid_current() AS start \gset

-- reads of the log are recorded once sensitive_audit.log_reads is on (postgresql.conf, or
-- ALTER ROLE ... SET by a superuser); here, for the auditor's session
ALTER ROLE regress_rd_auditor SET sensitive_audit.log_reads = on;
SET sensitive_audit.log_reads = on;
-- reads of the log by an auditor: through the view, one entry for the view
SET ROLE regress_rd_auditor;
SELECT count(*) >= 0 AS counted FROM sensitive_audit.log;
SELECT operation FROM sensitive_audit.log WHERE false;
RESET ROLE;
SELECT * FROM pg_temp.reads(:start) WHERE role = 'regress_rd_auditor';

-- in a read-only transaction the read goes to the event worker when there is one, else to the
-- server log (it cannot be written with the transaction)
BEGIN READ ONLY;
SELECT count(*) >= 0 AS counted FROM sensitive_audit.log_entries;
COMMIT;

-- reads of a table's tagged columns, once its owner turns it on
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
SELECT * FROM pg_temp.reads(:start) WHERE table_name = 'rd_patients';
SELECT operation, table_name, old_value, new_value FROM sensitive_audit.log
 WHERE operation = 'AUDIT READS' ORDER BY seq;

-- a partition of a read-audited table, read directly, is a read of it
SET ROLE regress_rd_owner;
CREATE TABLE rd_visits (id int PRIMARY KEY, note text) PARTITION BY RANGE (id);
CREATE TABLE rd_visits_1 PARTITION OF rd_visits FOR VALUES FROM (0) TO (100);
INSERT INTO rd_visits VALUES (1, 'private');
SELECT sensitive_audit.tag('rd_visits', 'note');
SELECT sensitive_audit.audit_reads('rd_visits', true);
SELECT note FROM rd_visits_1;
SELECT note FROM rd_visits;
RESET ROLE;
SELECT * FROM pg_temp.reads(:start) WHERE table_name LIKE 'rd_visits%';
SET ROLE regress_rd_owner;
SELECT sensitive_audit.untag('rd_visits', 'note');
DROP TABLE rd_visits;
RESET ROLE;

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
SELECT count(*) AS before FROM pg_temp.reads(:start) \gset
SELECT count(*) >= 0 AS read_while_off FROM sensitive_audit.log;
SELECT count(*) - :before AS reads_while_off FROM pg_temp.reads(:start);
SET sensitive_audit.log_reads = on;

SELECT bool_and(ok) AS verified FROM sensitive_audit.verify();
DROP TABLE untagged;
SET ROLE regress_rd_owner;
SELECT sensitive_audit.untag('rd_patients', 'ssn');
DROP TABLE rd_patients;
RESET ROLE;
REVOKE ALL ON SCHEMA sensitive_audit FROM regress_rd_owner, regress_rd_auditor;
REVOKE ALL ON sensitive_audit.log FROM regress_rd_auditor;
REVOKE CREATE ON SCHEMA public FROM regress_rd_owner;
ALTER ROLE regress_rd_auditor RESET sensitive_audit.log_reads;
RESET sensitive_audit.log_reads;
DROP ROLE regress_rd_owner, regress_rd_auditor;
