-- sensitive_audit, shown end to end.
--
-- scripts/demo.sh runs this file with psql against a throwaway cluster, as a
-- superuser, in a database without the extension. It tags two columns,
-- changes data in every common way, reads the history back, verifies the
-- chains, then tampers with the log the only way left (a superuser switching
-- the guards off by force) and shows verification catching it.
--
-- A few silent checks (ECHO none) make the script fail if the product does
-- not behave as shown, so the demo doubles as a smoke test.

\set ON_ERROR_STOP 1
\set QUIET on
\set SHOW_CONTEXT never
\pset pager off
\pset null '(null)'
\set QUIET off
\set ECHO queries

\echo
\echo '==== 1. A table with sensitive columns, and the extension'
CREATE TABLE public.patients (
    id        int PRIMARY KEY,
    name      text,
    ssn       text,
    diagnosis text,
    balance   numeric
);
CREATE EXTENSION sensitive_audit;

\echo
\echo '==== 2. Tag the sensitive columns: ssn and diagnosis (name and balance stay untagged)'
SELECT sensitive_audit.tag('public.patients', 'ssn', 'diagnosis');
SELECT * FROM sensitive_audit.tagged_columns;

\echo
\echo '==== 3. Change data in several ways'
\echo '-- INSERT: one entry per tagged column of each new row'
INSERT INTO public.patients (id, name, ssn, diagnosis, balance) VALUES
    (1, 'Alice Martin', '123-45-6789', 'hypertension', 120.00),
    (2, 'Bob Chen',     '987-65-4321', 'asthma',         0.00),
    (3, 'Carol Diaz',   '555-12-3456', 'fracture',      45.50);

\echo
\echo '-- UPDATE of a tagged column: one entry with the old and the new value'
UPDATE public.patients SET ssn = '123-45-0000' WHERE id = 1;

\echo
\echo '-- UPDATE of an untagged column only: no entry'
\set ECHO none
SELECT count(*) FILTER (WHERE operation <> 'READ') AS entries_before FROM sensitive_audit.log \gset
\set ECHO queries
UPDATE public.patients SET balance = balance + 25 WHERE id = 2;
SELECT :entries_before AS entries_before, count(*) FILTER (WHERE operation <> 'READ') AS entries_after
  FROM sensitive_audit.log;

\echo
\echo '-- DELETE: the tagged values of the removed row are kept'
DELETE FROM public.patients WHERE id = 3;

\echo
\echo '-- A rolled-back transaction leaves nothing behind'
\set ECHO none
SELECT count(*) FILTER (WHERE operation <> 'READ') AS entries_before FROM sensitive_audit.log \gset
\set ECHO queries
BEGIN;
UPDATE public.patients SET diagnosis = 'asthma, severe' WHERE id = 2;
ROLLBACK;
SELECT :entries_before AS entries_before, count(*) FILTER (WHERE operation <> 'READ') AS entries_after
  FROM sensitive_audit.log;

\echo
\echo '-- COPY FROM STDIN is captured like INSERT'
COPY public.patients (id, name, ssn, diagnosis, balance) FROM STDIN WITH (FORMAT csv);
4,Dan Evans,222-33-4444,diabetes,10.00
5,Eve Foster,333-44-5555,migraine,0.00
\.

\echo
\echo '-- INSERT ... ON CONFLICT DO UPDATE: only the tagged column that really changed is logged'
INSERT INTO public.patients AS p (id, name, ssn, diagnosis, balance)
VALUES (5, 'Eve Foster', '333-44-5555', 'migraine, chronic', 0.00)
ON CONFLICT (id) DO UPDATE SET diagnosis = EXCLUDED.diagnosis, balance = p.balance + 5;

\echo
\echo '==== 4. The history: one row per changed tagged column (tagging itself is recorded too)'
SELECT chain, seq, operation, table_name, column_name, row_key,
       old_value, new_value, session_role
FROM sensitive_audit.log
ORDER BY chain, seq;

\echo
\echo '==== 5. Verification: every chain is intact'
SELECT * FROM sensitive_audit.verify();
SELECT sensitive_audit.verify_or_raise() AS entries_verified;

\echo
\echo '==== 5b. Who read the log: every statement that read it is a READ entry (the event worker writes it)'
SELECT pg_sleep(1.5) AS a_moment_for_the_worker \gset
SELECT effective_role, table_name, new_value::jsonb - 'query_id' AS read
  FROM sensitive_audit.log WHERE operation = 'READ' ORDER BY event_time DESC LIMIT 3;

\echo
\echo '==== 6. The log is insert-only: UPDATE, DELETE and TRUNCATE are refused, even for a superuser'
SELECT current_user AS who, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user;
\set ECHO none
SELECT count(*) FILTER (WHERE operation <> 'READ') AS entries_before FROM sensitive_audit.log \gset
\set ECHO queries
\set ON_ERROR_STOP 0
UPDATE sensitive_audit.log SET new_value = '000-00-0000'
WHERE operation = 'UPDATE' AND column_name = 'ssn';
DELETE FROM sensitive_audit.log;
DELETE FROM sensitive_audit.log_entries;
TRUNCATE sensitive_audit.log_entries;
\set ON_ERROR_STOP 1
\set ECHO none
SELECT count(*) FILTER (WHERE operation <> 'READ') = :entries_before AS log_unchanged FROM sensitive_audit.log \gset
\if :log_unchanged
\else
DO $$ BEGIN RAISE EXCEPTION 'demo check failed: the log changed although every change was refused'; END $$;
\endif
\set ECHO queries

\echo
\echo '==== 6b. A guardrail: only members of a role may change diagnoses, at most 2 rows per statement'
CREATE ROLE demo_doctors;
GRANT demo_doctors TO CURRENT_USER;
SELECT sensitive_audit.set_policy('public.patients', 'diagnosis', allowed_roles => ARRAY['demo_doctors'],
                                  max_rows_per_statement => 2);
\set ON_ERROR_STOP 0
UPDATE public.patients SET diagnosis = 'reviewed';
\set ON_ERROR_STOP 1
SELECT operation, column_name, new_value FROM sensitive_audit.log WHERE operation = 'POLICY';

\echo
\echo '==== 6c. Protected values: the log keeps a fingerprint of ssn, and diagnoses that can be erased'
SELECT sensitive_audit.protect('public.patients', 'ssn', 'fingerprint');
SELECT sensitive_audit.protect('public.patients', 'diagnosis', 'erasable');
INSERT INTO public.patients (id, name, ssn, diagnosis, balance) VALUES (9, 'Dan Evans', '222-33-4444', 'tinnitus', 0);
SELECT operation, column_name, row_key, new_value, protection FROM sensitive_audit.log
 WHERE format = 2 ORDER BY chain, seq;
-- an auditor granted fingerprint() tests a candidate without ever seeing the value
SELECT new_value = sensitive_audit.fingerprint('public.patients', 'ssn', '222-33-4444') AS candidate_matches
  FROM sensitive_audit.log WHERE column_name = 'ssn' AND row_key = '{"id": "9"}';
-- the right to erasure: the row goes, then what the log keeps of it; every chain still verifies
DELETE FROM public.patients WHERE id = 9;
SELECT sensitive_audit.erase('public.patients', '{"id": "9"}') AS values_erased;
SELECT operation, column_name, left(coalesce(new_value, old_value), 30) AS kept, protection FROM sensitive_audit.log
 WHERE row_key = '{"id": "9"}' AND column_name = 'diagnosis' ORDER BY chain, seq;
SELECT bool_and(ok) AS every_chain_verifies FROM sensitive_audit.verify();
\set ECHO none
SELECT count(*) = 0 AS erased_gone FROM sensitive_audit.log WHERE 'tinnitus' IN (old_value, new_value) \gset
\if :erased_gone
\else
DO $$ BEGIN RAISE EXCEPTION 'demo check failed: an erased value is still in the log'; END $$;
\endif
\set ECHO queries

\echo
\echo '==== 6d. A checkpoint of the state, for a signer outside the database (sensitive-audit checkpoint)'
SELECT sensitive_audit.checkpoint_body();
SELECT sensitive_audit.inclusion_proof(chain, seq) AS proof_of_one_entry
  FROM sensitive_audit.log ORDER BY chain, seq LIMIT 1;

\echo
\echo '==== 7. Tampering by force: a superuser switches the guards off, rewrites an entry, and switches them back on'
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
-- The log is a view over two tables; the entry's own values are in log_entries.
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
UPDATE sensitive_audit.log_entries SET new_value = '000-00-0000'
WHERE (chain, seq) IN (SELECT chain, seq FROM sensitive_audit.log
					   WHERE operation = 'UPDATE' AND column_name = 'ssn');
-- ENABLE TRIGGER USER would bring the guards back in origin mode only; put
-- each one back as ENABLE ALWAYS, as the extension installs them.
SELECT format('ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER %I', tgname)
FROM pg_catalog.pg_trigger
WHERE tgrelid = 'sensitive_audit.log_entries'::regclass AND NOT tgisinternal
ORDER BY tgname \gexec
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;

\echo
\echo '==== 8. Verification catches it: the chain reports the first entry whose content changed'
SELECT * FROM sensitive_audit.verify();
\set ECHO none
SELECT count(*) FILTER (WHERE NOT ok) > 0 AS caught FROM sensitive_audit.verify() \gset
\if :caught
\else
DO $$ BEGIN RAISE EXCEPTION 'demo check failed: verify() did not report the rewritten entry'; END $$;
\endif
\set ECHO queries

\echo
\echo '-- and the companion for scripts and monitoring fails with SQLSTATE XX001 (data_corrupted)'
\set ON_ERROR_STOP 0
SELECT sensitive_audit.verify_or_raise();
\set ON_ERROR_STOP 1
\set ECHO none
SELECT :'ERROR'::boolean AND :'LAST_ERROR_SQLSTATE' = 'XX001' AS raised_corrupted \gset
\if :raised_corrupted
\echo 'verify_or_raise() failed with SQLSTATE' :LAST_ERROR_SQLSTATE
\else
DO $$ BEGIN RAISE EXCEPTION 'demo check failed: verify_or_raise() did not raise data_corrupted'; END $$;
\endif
\set ECHO queries

\echo
\echo '==== Done: every change to a tagged column was recorded, and the rewrite was caught.'
