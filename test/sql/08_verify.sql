-- verify() reads the log in one physical pass and puts each chain's
-- entries back in order; when that would take more than
-- maintenance_work_mem it verifies through the primary key instead.  Both
-- must give the same verdicts.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE TABLE bulk (id int PRIMARY KEY, secret text);
SELECT sensitive_audit.tag('bulk', 'secret');
-- one transaction: its 6000 entries are consecutive in one chain
INSERT INTO bulk SELECT g, repeat('s', 100) || g FROM generate_series(1, 6000) g;
SELECT chain AS bulk_chain, min(seq) AS first_seq, max(seq) AS last_seq
  FROM sensitive_audit.log WHERE table_name = 'bulk' AND operation = 'INSERT' GROUP BY chain \gset
SELECT :last_seq - :first_seq + 1 AS entries_in_one_run;

SELECT entries >= 6000 AS counted, ok FROM sensitive_audit.verify() WHERE chain = :bulk_chain;
SET maintenance_work_mem = '1MB';
SELECT entries >= 6000 AS counted, ok FROM sensitive_audit.verify() WHERE chain = :bulk_chain;
RESET maintenance_work_mem;

-- a superuser, by force, deletes the first of the bulk entries: everything
-- after it waits for a predecessor that never comes
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER log_guard;
DELETE FROM sensitive_audit.log_entries WHERE chain = :bulk_chain AND seq = :first_seq;
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_guard;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;

-- the stash holds the rest of the chain (about 1.5 MB)
SELECT ok, first_bad_seq - :first_seq AS bad_offset, problem LIKE 'gap: %' AS gap
  FROM sensitive_audit.verify() WHERE chain = :bulk_chain;
-- with too little memory for that, the same verdict through the index
SET maintenance_work_mem = '1MB';
SET client_min_messages = debug1;
SELECT ok, first_bad_seq - :first_seq AS bad_offset, problem LIKE 'gap: %' AS gap
  FROM sensitive_audit.verify() WHERE chain = :bulk_chain;
RESET client_min_messages;
RESET maintenance_work_mem;
-- the other chains are unaffected
SELECT count(*) FILTER (WHERE NOT ok) AS failing_chains FROM sensitive_audit.verify();
DO $$
BEGIN
	PERFORM sensitive_audit.verify_or_raise();
EXCEPTION WHEN data_corrupted THEN
	RAISE NOTICE 'verify_or_raise() raised data_corrupted';
END;
$$;

-- Contexts beyond maintenance_work_mem are read as entries need them, with the
-- same results (test/t/011_verify_memory.pl checks the memory and tampering).
CREATE TABLE many_ctx (id int PRIMARY KEY, v text);
SELECT sensitive_audit.tag('many_ctx', 'v');
DO $$
BEGIN
	FOR i IN 1..3000 LOOP
		PERFORM set_config('application_name', 'app ' || i || ' ' || repeat('x', 50), true);
		INSERT INTO many_ctx VALUES (i, 'v' || i);
	END LOOP;
END;
$$;
RESET application_name;
SELECT count(DISTINCT application_name) AS app_names FROM sensitive_audit.log WHERE table_name = 'many_ctx';
CREATE TEMP TABLE verified AS SELECT * FROM sensitive_audit.verify();
SET maintenance_work_mem = '1MB';
CREATE TEMP TABLE verified_small AS SELECT * FROM sensitive_audit.verify();
RESET maintenance_work_mem;
SELECT sum(entries) = (SELECT count(*) FROM sensitive_audit.log_entries) AS all_entries,
	   (SELECT count(*) FROM (SELECT * FROM verified EXCEPT SELECT * FROM verified_small) d) AS differences
  FROM verified_small;
SELECT sensitive_audit.untag('many_ctx', 'v');
DROP TABLE many_ctx;
