-- Tagging and untagging columns: idempotent, recorded in the chain,
-- visible in tagged_columns, and following renames.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
CREATE TABLE patients (
	id int PRIMARY KEY,
	name text,
	ssn text,
	diagnosis text,
	balance numeric
);

SELECT sensitive_audit.tag('patients', 'ssn', 'diagnosis');
SELECT table_schema, table_name, column_name, column_type, partitioned,
	   tagged_at IS NOT NULL AS has_time, tagged_by
  FROM sensitive_audit.tagged_columns ORDER BY column_name;

-- the TAG entries, one per column
SELECT operation, table_schema, table_name, column_name, value_type, old_value, new_value,
	   row_key, session_role = current_user AS by_me
  FROM sensitive_audit.log WHERE table_name = 'patients' ORDER BY txid, seq;

-- tagging again changes nothing and records nothing
SELECT sensitive_audit.tag('patients', 'ssn');
SELECT sensitive_audit.tag('patients', VARIADIC ARRAY['diagnosis', 'ssn']::name[]);
SELECT count(*) FROM sensitive_audit.log WHERE table_name = 'patients';

-- the capture trigger carries exactly the tagged columns, ENABLE ALWAYS
SELECT tgname, tgenabled, tgattr FROM pg_trigger
 WHERE tgrelid = 'patients'::regclass ORDER BY tgname;

-- untag one column: recorded, and changes to it are no longer captured
SELECT sensitive_audit.untag('patients', 'diagnosis');
SELECT sensitive_audit.untag('patients', 'diagnosis');	-- again: nothing
SELECT operation, column_name FROM sensitive_audit.log
 WHERE table_name = 'patients' ORDER BY txid, seq;
INSERT INTO patients VALUES (1, 'Ann', '123-45-6789', 'flu', 10);
SELECT operation, column_name, new_value FROM sensitive_audit.log
 WHERE table_name = 'patients' AND operation = 'INSERT' ORDER BY txid, seq;
SELECT column_name FROM sensitive_audit.tagged_columns WHERE table_name = 'patients';

-- a tag in a rolled-back transaction leaves nothing behind
BEGIN;
SELECT sensitive_audit.tag('patients', 'name');
ROLLBACK;
SELECT count(*) FROM sensitive_audit.log WHERE table_name = 'patients' AND column_name = 'name';
SELECT column_name FROM sensitive_audit.tagged_columns WHERE table_name = 'patients';

-- renaming a tagged column keeps it tagged under its new name
ALTER TABLE patients RENAME COLUMN ssn TO social_security_number;
SELECT column_name FROM sensitive_audit.tagged_columns WHERE table_name = 'patients';
UPDATE patients SET social_security_number = '987-65-4321' WHERE id = 1;
SELECT operation, column_name, old_value, new_value FROM sensitive_audit.log
 WHERE table_name = 'patients' AND operation = 'UPDATE';

-- untagging the last column removes the triggers
SELECT sensitive_audit.untag('patients', 'social_security_number');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'patients'::regclass;
UPDATE patients SET social_security_number = '000' WHERE id = 1;
SELECT count(*) FROM sensitive_audit.log WHERE table_name = 'patients' AND operation = 'UPDATE';

-- SECURITY LABEL is the same as tag()/untag()
SECURITY LABEL FOR sensitive_audit ON COLUMN patients.name IS 'sensitive';
SELECT column_name FROM sensitive_audit.tagged_columns WHERE table_name = 'patients';
SECURITY LABEL FOR sensitive_audit ON COLUMN patients.name IS 'secret';
SECURITY LABEL FOR sensitive_audit ON TABLE patients IS 'sensitive';
SECURITY LABEL FOR sensitive_audit ON COLUMN patients.name IS NULL;
SELECT column_name FROM sensitive_audit.tagged_columns WHERE table_name = 'patients';
SELECT operation, column_name FROM sensitive_audit.log
 WHERE table_name = 'patients' AND column_name = 'name' ORDER BY txid, seq;
-- untag() clears a label that tagged the column
SECURITY LABEL FOR sensitive_audit ON COLUMN patients.name IS 'sensitive';
SELECT sensitive_audit.untag('patients', 'name');
SELECT count(*) AS labels_left FROM pg_seclabel
 WHERE provider = 'sensitive_audit' AND objoid = 'patients'::regclass;
-- in a dump's script (check_function_bodies off) a label is only recorded:
-- the restore brings the catalog of what is tagged and the triggers itself
SET check_function_bodies = off;
SECURITY LABEL FOR sensitive_audit ON COLUMN patients.name IS 'sensitive';
RESET check_function_bodies;
SELECT count(*) AS tagged_by_restored_label FROM sensitive_audit.tagged_columns
 WHERE table_name = 'patients' AND column_name = 'name';
SECURITY LABEL FOR sensitive_audit ON COLUMN patients.name IS NULL;

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
