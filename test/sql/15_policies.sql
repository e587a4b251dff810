-- Guardrails on tagged columns: allowed roles, rows per statement, rows per
-- hour per role; block or alert; every change of a policy recorded.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE ROLE regress_pol_owner;
CREATE ROLE regress_pol_clerk;
CREATE ROLE regress_pol_admins;
CREATE ROLE regress_pol_hr IN ROLE regress_pol_admins;
GRANT CREATE ON SCHEMA public TO regress_pol_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_pol_owner, regress_pol_clerk;
SET ROLE regress_pol_owner;
CREATE TABLE payroll (id int PRIMARY KEY, salary numeric, note text, iban text);
INSERT INTO payroll SELECT g, 1000 + g, 'n', 'DE' || g FROM generate_series(1, 100) g;
SELECT sensitive_audit.tag('payroll', 'salary', 'iban');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON payroll TO regress_pol_clerk, regress_pol_hr;

-- bad input
SELECT sensitive_audit.set_policy('payroll', 'note', max_rows_per_statement => 1);
SELECT sensitive_audit.set_policy('payroll', 'nosuch', max_rows_per_statement => 1);
SELECT sensitive_audit.set_policy('payroll', 'salary');
SELECT sensitive_audit.set_policy('payroll', 'salary', max_rows_per_statement => 0);
SELECT sensitive_audit.set_policy('payroll', 'salary', max_rows_per_hour => -5);
SELECT sensitive_audit.set_policy('payroll', 'salary', allowed_roles => ARRAY['regress_pol_nobody']);
SELECT sensitive_audit.set_policy('payroll', 'salary', allowed_roles => ARRAY[NULL]::name[]);
SELECT sensitive_audit.set_policy('payroll', 'salary', max_rows_per_statement => 1, action => 'warn');
SELECT sensitive_audit.set_policy(NULL, 'salary', max_rows_per_statement => 1);
SELECT sensitive_audit.drop_policy('payroll', 'salary');
RESET ROLE;
-- only the table's owner sets a policy
SET ROLE regress_pol_clerk;
SELECT sensitive_audit.set_policy('payroll', 'salary', max_rows_per_statement => 1000);
SELECT sensitive_audit.drop_policy('payroll', 'salary');
RESET ROLE;

-- allowed roles (membership counts), at most 10 rows per statement
SET ROLE regress_pol_owner;
SELECT sensitive_audit.set_policy('payroll', 'salary', allowed_roles => ARRAY['regress_pol_admins'],
								  max_rows_per_statement => 10);
SELECT tbl, column_name, allowed_roles, max_rows_per_statement, max_rows_per_hour, action, set_by
  FROM sensitive_audit.policies;
-- setting the same policy again records nothing
SELECT sensitive_audit.set_policy('payroll', 'salary', allowed_roles => ARRAY['regress_pol_admins'],
								  max_rows_per_statement => 10);
RESET ROLE;
SET ROLE regress_pol_hr;
UPDATE payroll SET salary = salary + 1 WHERE id <= 10;
UPDATE payroll SET salary = salary + 1 WHERE id <= 11;
UPDATE payroll SET iban = iban || 'x' WHERE id <= 50;
UPDATE payroll SET note = 'untagged, unguarded' WHERE id <= 50;
RESET ROLE;
SET ROLE regress_pol_clerk;
UPDATE payroll SET salary = 0 WHERE id = 1;
INSERT INTO payroll VALUES (101, 1, 'n', 'x');
INSERT INTO payroll (id, note, iban) VALUES (101, 'n', 'x');
DELETE FROM payroll WHERE id = 2;
TRUNCATE payroll;
UPDATE payroll SET note = 'allowed' WHERE id = 3;
-- a refused change of one column refuses the statement: nothing of it is logged
UPDATE payroll SET salary = 0, iban = 'y' WHERE id = 4;
RESET ROLE;
SELECT count(*) AS salary_entries_of_clerk FROM sensitive_audit.log
 WHERE table_name = 'payroll' AND session_role = 'regress_pol_clerk' AND column_name = 'salary';
-- a function's statements count together, as one top-level statement
CREATE FUNCTION public.bump(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		UPDATE public.payroll SET salary = salary + 1 WHERE id = i;
	END LOOP;
END $$;
SELECT public.bump(10);
SELECT public.bump(11);

-- alert: the statement goes ahead, one ALERT entry per statement and rule (and a NOTIFY:
-- see the isolation test iso_policies)
SET ROLE regress_pol_owner;
SELECT sensitive_audit.set_policy('payroll', 'salary', max_rows_per_statement => 10, action => 'alert');
RESET ROLE;
UPDATE payroll SET salary = salary + 1 WHERE id <= 12;
SELECT operation, column_name, row_key, new_value::jsonb - 'database' AS alert
  FROM sensitive_audit.log WHERE operation = 'ALERT' ORDER BY seq;
SELECT count(*) AS updated FROM sensitive_audit.log
 WHERE operation = 'UPDATE' AND table_name = 'payroll' AND column_name = 'salary' AND new_value LIKE '%' AND row_key->>'id' = '12';

-- rows per hour per role, across statements (and sessions: see the isolation test)
SET ROLE regress_pol_owner;
SELECT sensitive_audit.set_policy('payroll', 'iban', max_rows_per_hour => 25);
RESET ROLE;
SET ROLE regress_pol_hr;
UPDATE payroll SET iban = iban || 'h' WHERE id <= 20;
UPDATE payroll SET iban = iban || 'h' WHERE id <= 5;
UPDATE payroll SET iban = iban || 'h' WHERE id <= 1;
RESET ROLE;
SET ROLE regress_pol_clerk;
UPDATE payroll SET iban = iban || 'c' WHERE id <= 20;
RESET ROLE;

-- COMMITs inside one statement (a DO block) do not start a new count
SET ROLE regress_pol_owner;
SELECT sensitive_audit.set_policy('payroll', 'iban', max_rows_per_statement => 10);
RESET ROLE;
DO $$
BEGIN
	FOR i IN 0..2 LOOP
		UPDATE public.payroll SET iban = iban || 'd' WHERE id > i * 5 AND id <= i * 5 + 5;
		COMMIT;
	END LOOP;
END $$;
SELECT count(*) AS committed_before_refusal FROM payroll WHERE iban LIKE '%d';
-- an alert in a rolled-back subtransaction is raised again by the same statement
SET ROLE regress_pol_owner;
SELECT sensitive_audit.set_policy('payroll', 'iban', max_rows_per_statement => 10, action => 'alert');
RESET ROLE;
SELECT count(*) AS alerts_before FROM sensitive_audit.log WHERE operation = 'ALERT' AND column_name = 'iban' \gset
DO $$
BEGIN
	BEGIN
		UPDATE public.payroll SET iban = iban || 's' WHERE id <= 11;
		RAISE EXCEPTION 'undo';
	EXCEPTION WHEN others THEN NULL;
	END;
	UPDATE public.payroll SET iban = iban || 'k' WHERE id <= 30;
END $$;
SELECT count(*) - :alerts_before AS alerts_kept FROM sensitive_audit.log WHERE operation = 'ALERT' AND column_name = 'iban';

-- every change of a policy is a POLICY entry: old and new policy
SET ROLE regress_pol_owner;
SELECT sensitive_audit.drop_policy('payroll', 'iban');
RESET ROLE;
SELECT operation, table_name, column_name, old_value::jsonb, new_value::jsonb, session_role
  FROM sensitive_audit.log WHERE operation = 'POLICY' ORDER BY seq;

-- a renamed column keeps its policy; untag drops it (and says so)
SET ROLE regress_pol_owner;
ALTER TABLE payroll RENAME COLUMN salary TO pay;
SELECT column_name, max_rows_per_statement, action FROM sensitive_audit.policies;
SELECT sensitive_audit.untag('payroll', 'pay');
SELECT count(*) AS policies FROM sensitive_audit.policies;
RESET ROLE;
SELECT operation, column_name, old_value::jsonb ->> 'action' AS old_action, new_value FROM sensitive_audit.log
 WHERE operation IN ('POLICY', 'UNTAG') AND table_name = 'payroll' ORDER BY chain, seq DESC LIMIT 2;

-- a detached partition keeps the policies its rows were held to
SET ROLE regress_pol_owner;
CREATE TABLE pparent (id int PRIMARY KEY, salary numeric) PARTITION BY RANGE (id);
CREATE TABLE ppart PARTITION OF pparent FOR VALUES FROM (0) TO (100);
INSERT INTO pparent VALUES (1, 10);
SELECT sensitive_audit.tag('pparent', 'salary');
SELECT sensitive_audit.set_policy('pparent', 'salary', allowed_roles => ARRAY['regress_pol_admins']);
GRANT SELECT, UPDATE ON pparent, ppart TO regress_pol_clerk;
ALTER TABLE pparent DETACH PARTITION ppart;
SELECT tbl, column_name, allowed_roles, action FROM sensitive_audit.policies ORDER BY tbl::text;
RESET ROLE;
SET ROLE regress_pol_clerk;
UPDATE ppart SET salary = 11 WHERE id = 1;
RESET ROLE;
SELECT operation, table_name, column_name, CASE WHEN operation = 'POLICY' THEN new_value::jsonb ->> 'action' END AS action FROM sensitive_audit.log
 WHERE table_name IN ('pparent', 'ppart') AND operation IN ('POLICY', 'DETACH') ORDER BY chain, seq;
-- attaching it again: refused with the reason, until it is untagged
SET ROLE regress_pol_owner;
ALTER TABLE pparent ATTACH PARTITION ppart FOR VALUES FROM (0) TO (100);
SELECT sensitive_audit.untag('ppart', 'salary');
ALTER TABLE pparent ATTACH PARTITION ppart FOR VALUES FROM (0) TO (100);
RESET ROLE;
SELECT operation, table_name, column_name, new_value FROM sensitive_audit.log
 WHERE table_name = 'ppart' AND operation IN ('UNTAG', 'ATTACH') ORDER BY chain, seq;

SELECT bool_and(ok) AS verified FROM sensitive_audit.verify();
DROP FUNCTION public.bump(int);
DROP TABLE payroll, pparent;
REVOKE ALL ON SCHEMA sensitive_audit FROM regress_pol_owner, regress_pol_clerk;
REVOKE CREATE ON SCHEMA public FROM regress_pol_owner;
DROP ROLE regress_pol_owner, regress_pol_clerk, regress_pol_hr, regress_pol_admins;
