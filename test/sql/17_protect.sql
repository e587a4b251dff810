-- Sensitive values protected in the log: fingerprint, encrypt, erasable.
-- The chain commits to what is stored (format 2 entries), so every chain
-- verifies without a key or a clear value.
\set SHOW_CONTEXT never
CREATE ROLE regress_prot_owner;
CREATE ROLE regress_prot_clerk;
CREATE ROLE regress_prot_auditor;
CREATE ROLE regress_prot_dpo;
GRANT CREATE ON SCHEMA public TO regress_prot_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_prot_owner, regress_prot_clerk, regress_prot_auditor,
	regress_prot_dpo;
GRANT SELECT ON sensitive_audit.log TO regress_prot_auditor;
SET ROLE regress_prot_owner;
CREATE TABLE prot_patients (id int PRIMARY KEY, ssn text, diagnosis text, card text, note text, amount numeric);
CREATE TABLE prot_nokey (ssn text);
SELECT sensitive_audit.tag('prot_patients', 'ssn', 'diagnosis', 'card', 'amount');
SELECT sensitive_audit.tag('prot_nokey', 'ssn');
GRANT SELECT, INSERT, UPDATE, DELETE ON prot_patients TO regress_prot_clerk;

-- bad input
SELECT sensitive_audit.protect('prot_patients', 'ssn', 'hash');
SELECT sensitive_audit.protect('prot_patients', 'note', 'fingerprint');
SELECT sensitive_audit.protect('prot_patients', 'nosuch', 'fingerprint');
SELECT sensitive_audit.protect('prot_patients', 'id', 'fingerprint');
CREATE TABLE prot_keyed (code text PRIMARY KEY, v text);
SELECT sensitive_audit.tag('prot_keyed', 'code', 'v');
SELECT sensitive_audit.protect('prot_keyed', 'code', 'erasable');
SELECT sensitive_audit.protect('prot_nokey', 'ssn', 'erasable');
SELECT sensitive_audit.protect('prot_patients', 'card', 'encrypt');
SELECT sensitive_audit.protect('prot_patients', NULL, 'encrypt');
RESET ROLE;
-- only the table's owner chooses
SET ROLE regress_prot_clerk;
SELECT sensitive_audit.protect('prot_patients', 'ssn', 'fingerprint');
-- only a granted role sets the encryption key, tests a fingerprint, erases
SELECT sensitive_audit.set_encryption_key('x');
SELECT sensitive_audit.fingerprint('prot_patients', 'ssn', '123-45-6789');
SELECT sensitive_audit.erase('prot_patients', '{"id": "1"}');
RESET ROLE;
-- not a key, or a private key, or a key of another kind (never echoed back)
SELECT sensitive_audit.set_encryption_key('not a key');
SELECT sensitive_audit.set_encryption_key('-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGrFs0PWdGalFLd1+E3k+O8caYdspzlCqe3L5bn81cTI=
-----END PUBLIC KEY-----');
SELECT sensitive_audit.fingerprint('prot_patients', 'ssn', '123-45-6789');

-- the modes
SELECT sensitive_audit.set_encryption_key('-----BEGIN PUBLIC KEY-----
MCowBQYDK2VuAyEAr0CP3eWdw4utdamecqR8Q9biWZQcqGgZgdTGTVQ4IAU=
-----END PUBLIC KEY-----') AS key_id;
SET ROLE regress_prot_owner;
SELECT sensitive_audit.protect('prot_patients', 'ssn', 'fingerprint');
SELECT sensitive_audit.protect('prot_patients', 'amount', 'fingerprint');
SELECT sensitive_audit.protect('prot_patients', 'card', 'encrypt');
SELECT sensitive_audit.protect('prot_patients', 'diagnosis', 'erasable');
-- the same again records nothing
SELECT sensitive_audit.protect('prot_patients', 'diagnosis', 'erasable');
RESET ROLE;
SELECT table_name, column_name, protection FROM sensitive_audit.tagged_columns
 WHERE table_name = 'prot_patients' ORDER BY column_name;
SELECT operation, column_name, old_value, new_value, format FROM sensitive_audit.log
 WHERE operation IN ('PROTECT', 'ENCRYPTION KEY') ORDER BY chain, seq;
-- the fingerprint key made by the first protect(..., 'fingerprint') is named by its id only
SELECT count(*) AS fingerprint_key_entries, bool_and(new_value::jsonb ->> 'key_id' ~ '^[0-9a-f]{16}$') AS named_by_id
  FROM sensitive_audit.log WHERE operation = 'FINGERPRINT KEY';
-- what the key entry says: the key id and the public key, nothing private
SELECT new_value::jsonb ->> 'key_id' AS key_id, new_value::jsonb ? 'public_key' AS has_public_key
  FROM sensitive_audit.log WHERE operation = 'ENCRYPTION KEY';

SET ROLE regress_prot_clerk;
INSERT INTO prot_patients VALUES (1, '123-45-6789', 'flu', '4111111111111111', 'n', 10.50);
INSERT INTO prot_patients VALUES (2, '123-45-6789', NULL, '5500000000000004', 'n', 10.5);
UPDATE prot_patients SET diagnosis = 'asthma', card = '340000000000009', amount = 11 WHERE id = 1;
DELETE FROM prot_patients WHERE id = 2;
RESET ROLE;

-- what a reader of the log sees: no clear ssn, card or amount
SET ROLE regress_prot_auditor;
SELECT operation, row_key, column_name, protection, format,
	   CASE WHEN protection IN ('encrypt', 'fingerprint') THEN split_part(old_value, ':', 1) || ':...'
			ELSE old_value END AS old_value,
	   CASE WHEN protection IN ('encrypt', 'fingerprint') THEN split_part(new_value, ':', 1) || ':...'
			ELSE new_value END AS new_value,
	   length(new_value) AS new_length
  FROM sensitive_audit.log WHERE table_name = 'prot_patients' AND operation IN ('INSERT', 'UPDATE', 'DELETE')
 ORDER BY chain, seq, column_name;
-- readers of the log cannot read the keys or the kept values directly
SELECT * FROM sensitive_audit.fingerprint_key;
SELECT * FROM sensitive_audit.erasable_values;
RESET ROLE;
SELECT count(*) AS clear_values_in_log FROM sensitive_audit.log
 WHERE table_name = 'prot_patients' AND column_name <> 'diagnosis' AND (old_value IN ('123-45-6789', '4111111111111111', '5500000000000004', '340000000000009', '10.50', '11')
	OR new_value IN ('123-45-6789', '4111111111111111', '5500000000000004', '340000000000009', '10.50', '11'));

-- fingerprints: equal values fingerprint the same; a granted auditor tests a candidate
SELECT count(DISTINCT new_value) AS distinct_ssn_fingerprints, count(*) AS ssn_entries
  FROM sensitive_audit.log WHERE table_name = 'prot_patients' AND column_name = 'ssn' AND operation = 'INSERT';
GRANT EXECUTE ON FUNCTION sensitive_audit.fingerprint(regclass, name, text) TO regress_prot_auditor;
SET ROLE regress_prot_auditor;
SELECT sensitive_audit.fingerprint('prot_patients', 'ssn', '123-45-6789') = new_value AS candidate_matches,
	   sensitive_audit.fingerprint('prot_patients', 'ssn', '123-45-6780') = new_value AS other_matches
  FROM sensitive_audit.log WHERE table_name = 'prot_patients' AND column_name = 'ssn' AND row_key = '{"id": "1"}';
-- a candidate is read through the column's type: 10.5 is not 10.50
SELECT sensitive_audit.fingerprint('prot_patients', 'amount', '10.50') = new_value AS as_stored,
	   sensitive_audit.fingerprint('prot_patients', 'amount', '10.5') = new_value AS other_scale
  FROM sensitive_audit.log WHERE table_name = 'prot_patients' AND column_name = 'amount' AND row_key = '{"id": "1"}'
   AND operation = 'INSERT';
-- each column has a key of its own: the same text fingerprints differently in another column
SELECT sensitive_audit.fingerprint('prot_patients', 'ssn', '11') <> sensitive_audit.fingerprint('prot_patients', 'amount', '11')
	   AS columns_differ;
SELECT sensitive_audit.fingerprint('prot_patients', 'amount', 'ten');
SELECT sensitive_audit.fingerprint('prot_patients', 'note', 'n');
RESET ROLE;
-- sealed values: prefix, and a different ciphertext for the same value each time
SELECT count(*) FILTER (WHERE new_value LIKE 'x25519-aes256gcm:%') AS sealed,
	   count(DISTINCT new_value) AS distinct_ciphertexts
  FROM sensitive_audit.log WHERE table_name = 'prot_patients' AND column_name = 'card' AND operation IN ('INSERT', 'UPDATE');

-- erasable: the log shows the kept value, the chain commits to the salted hash
SELECT e.old_value IS NULL OR e.old_value LIKE 'sha256-salted:%' AS old_committed,
	   e.new_value IS NULL OR e.new_value LIKE 'sha256-salted:%' AS new_committed,
	   l.old_value, l.new_value, l.protection
  FROM sensitive_audit.log_entries e JOIN sensitive_audit.log l USING (chain, seq)
 WHERE l.table_name = 'prot_patients' AND l.column_name = 'diagnosis' AND l.operation IN ('INSERT', 'UPDATE', 'DELETE')
 ORDER BY e.chain, e.seq;
SELECT table_name, row_key, salt IS NOT NULL AS salted, value FROM sensitive_audit.erasable_values ORDER BY value;
-- the commitment is SHA-256("sensitive_audit erasable" NUL || salt || value)
SELECT bool_and(commitment = sha256('\x73656e7369746976655f6175646974206572617361626c6500'::bytea || salt || convert_to(value, 'UTF8')))
	   AS commitments_check
  FROM sensitive_audit.erasable_values;

-- reconcile compares in the kept form: no problem now
SELECT * FROM sensitive_audit.reconcile('prot_patients');
-- a superuser's change behind the log's back is found in fingerprinted and
-- erasable columns; in an encrypted one only a value appearing or vanishing
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER TABLE prot_patients DISABLE TRIGGER USER;
UPDATE prot_patients SET ssn = '000-00-0000', diagnosis = 'none', card = '0' WHERE id = 1;
SELECT row_key, column_name, left(logged_value, 12) AS logged_value, current_value, problem
  FROM sensitive_audit.reconcile('prot_patients');
UPDATE prot_patients SET ssn = '123-45-6789', diagnosis = 'asthma', card = NULL WHERE id = 1;
SELECT row_key, column_name, left(logged_value, 17) AS logged_value, current_value, problem
  FROM sensitive_audit.reconcile('prot_patients');
UPDATE prot_patients SET card = '340000000000009' WHERE id = 1;
ALTER TABLE prot_patients ENABLE ALWAYS TRIGGER sensitive_audit_capture;
ALTER TABLE prot_patients ENABLE ALWAYS TRIGGER sensitive_audit_capture_update;
ALTER TABLE prot_patients ENABLE ALWAYS TRIGGER sensitive_audit_truncate;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;
SELECT count(*) AS disagreements FROM sensitive_audit.reconcile('prot_patients');

-- a kept value rewritten or removed by a superuser: the chain holds only the
-- commitment, so verify() holds every kept value to it
BEGIN;
UPDATE sensitive_audit.erasable_values SET value = 'cough' WHERE value = 'asthma';
SELECT ok, first_bad_seq IS NOT NULL AS has_seq, problem FROM sensitive_audit.verify() WHERE NOT ok;
ROLLBACK;
BEGIN;
DELETE FROM sensitive_audit.erasable_values WHERE value = 'asthma';
SELECT ok, first_bad_seq IS NOT NULL AS has_seq, problem FROM sensitive_audit.verify() WHERE NOT ok;
ROLLBACK;
BEGIN;
UPDATE sensitive_audit.erasable_values SET salt = NULL, value = NULL, erased_at = now() WHERE value = 'asthma';
SELECT ok, first_bad_seq IS NOT NULL AS has_seq, problem FROM sensitive_audit.verify() WHERE NOT ok;
ROLLBACK;
SELECT count(*) AS failing_chains FROM sensitive_audit.verify() WHERE NOT ok;

-- erase: a role the extension's owner grants
GRANT EXECUTE ON FUNCTION sensitive_audit.erase(regclass, jsonb) TO regress_prot_dpo;
GRANT EXECUTE ON FUNCTION sensitive_audit.erase(text, text, jsonb) TO regress_prot_dpo;
SET ROLE regress_prot_dpo;
SELECT sensitive_audit.erase('prot_patients', '{"id": "99"}');
SELECT sensitive_audit.erase('prot_patients', '{"id": 1}');
SELECT sensitive_audit.erase('prot_patients', '{"id": "1"}') AS erased;
SELECT sensitive_audit.erase('prot_patients', '{"id": "1"}') AS erased_again;
-- a row whose key changed: erasing its current key erases what was kept under the old one
RESET ROLE;
SET ROLE regress_prot_clerk;
INSERT INTO prot_patients VALUES (10, '101-01-0101', 'migraine', NULL, 'n', 1);
UPDATE prot_patients SET id = 11 WHERE id = 10;
UPDATE prot_patients SET diagnosis = 'tension headache' WHERE id = 11;
DELETE FROM prot_patients WHERE id = 11;
RESET ROLE;
SELECT row_key, value FROM sensitive_audit.erasable_values WHERE value IN ('migraine', 'tension headache') ORDER BY value;
SET ROLE regress_prot_dpo;
SELECT sensitive_audit.erase('prot_patients', '{"id": "11"}') AS erased_after_rekey;
SELECT sensitive_audit.erase('prot_patients', '{"id": "10"}') AS old_key;
RESET ROLE;
-- a renamed table keeps its kept values; a row key naming no row is refused
SET ROLE regress_prot_clerk;
INSERT INTO prot_patients VALUES (20, '202-02-0202', 'sciatica', '6011111111111117', 'n', 1);
RESET ROLE;
ALTER TABLE prot_patients RENAME TO prot_patients_renamed;
SET ROLE regress_prot_dpo;
SELECT sensitive_audit.erase('prot_patients_renamed', '{"id": "20"}') AS erased_after_rename;
SELECT sensitive_audit.erase('prot_patients_renamed', '{}');
RESET ROLE;
ALTER TABLE prot_patients_renamed RENAME TO prot_patients;
-- a dropped table's values are erased by the names its entries gave it
CREATE TABLE prot_gone (id int PRIMARY KEY, d text);
SELECT sensitive_audit.tag('prot_gone', 'd');
SELECT sensitive_audit.protect('prot_gone', 'd', 'erasable');
INSERT INTO prot_gone VALUES (1, 'lumbago');
DROP TABLE prot_gone;
SELECT tbl IS NULL AS relation_forgotten, value FROM sensitive_audit.erasable_values WHERE table_name = 'prot_gone';
SET ROLE regress_prot_dpo;
SELECT sensitive_audit.erase('public', 'prot_gone', '{"id": "1"}') AS erased_after_drop;
RESET ROLE;
SELECT value, erased_by FROM sensitive_audit.erasable_values WHERE table_name = 'prot_gone';
SELECT operation, table_name, row_key, new_value, effective_role FROM sensitive_audit.log WHERE operation = 'ERASE';
SELECT row_key, salt, value, erased_at IS NOT NULL AS erased, erased_by FROM sensitive_audit.erasable_values
 ORDER BY row_key, erased;
SELECT l.operation, l.row_key, l.protection, l.old_value LIKE 'sha256-salted:%' AS old_committed,
	   l.new_value LIKE 'sha256-salted:%' AS new_committed
  FROM sensitive_audit.log l WHERE l.table_name = 'prot_patients' AND l.column_name = 'diagnosis' AND l.operation IN ('INSERT', 'UPDATE')
 ORDER BY l.chain, l.seq;
SELECT count(*) AS flu_or_asthma_left FROM sensitive_audit.log
 WHERE table_name = 'prot_patients' AND ('flu' IN (old_value, new_value) OR 'asthma' IN (old_value, new_value));

-- switching back to plain: recorded, and new entries are format 1 again
SET ROLE regress_prot_owner;
SELECT sensitive_audit.protect('prot_patients', 'ssn', 'plain');
RESET ROLE;
SET ROLE regress_prot_clerk;
UPDATE prot_patients SET ssn = '987-65-4321' WHERE id = 1;
RESET ROLE;
SELECT operation, column_name, new_value, format, protection FROM sensitive_audit.log
 WHERE table_name = 'prot_patients' AND column_name = 'ssn' ORDER BY chain, seq DESC LIMIT 2;
-- the column keeps its fingerprint key: its old fingerprints can still be tested
SELECT count(*) AS old_fingerprints_found FROM sensitive_audit.log
 WHERE table_name = 'prot_patients' AND column_name = 'ssn'
   AND new_value = sensitive_audit.fingerprint('prot_patients', 'ssn', '123-45-6789');
-- untag forgets the protection, with an entry
SET ROLE regress_prot_owner;
SELECT sensitive_audit.untag('prot_patients', 'amount');
RESET ROLE;
SELECT operation, column_name, old_value, new_value FROM sensitive_audit.log
 WHERE table_name = 'prot_patients' AND column_name = 'amount' AND operation IN ('PROTECT', 'UNTAG') ORDER BY chain, seq;

-- a protected column cannot become part of the row key
SET ROLE regress_prot_owner;
ALTER TABLE prot_patients DROP CONSTRAINT prot_patients_pkey, ADD PRIMARY KEY (id, card);
-- nor can a key column generated from it
ALTER TABLE prot_patients ADD COLUMN card_copy text GENERATED ALWAYS AS ('c' || card) STORED;
ALTER TABLE prot_patients DROP CONSTRAINT prot_patients_pkey, ADD PRIMARY KEY (card_copy);
ALTER TABLE prot_patients DROP COLUMN card_copy;
-- without a key, the row is known by its tagged values, but never by protected ones
ALTER TABLE prot_patients DROP CONSTRAINT prot_patients_pkey;
RESET ROLE;
SET ROLE regress_prot_clerk;
INSERT INTO prot_patients VALUES (5, '555-55-5555', 'gout', '6011000000000004', 'n', 1);
RESET ROLE;
SELECT DISTINCT row_key, row_key_source FROM sensitive_audit.log
 WHERE table_name = 'prot_patients' AND operation = 'INSERT' AND row_key_source = 'tagged values';

SELECT bool_and(ok) AS verified, sum(entries) > 0 AS some_entries FROM sensitive_audit.verify();
SELECT clock_timestamp() AS before_drop \gset
DROP TABLE prot_patients, prot_nokey, prot_keyed;

-- the extension's own bookkeeping is nobody's read: the DROP set the kept values' table to
-- NULL (an UPDATE whose WHERE reads them); then one read of them, recorded, marks the end
SELECT count(*) > 0 AS kept_values_remain FROM sensitive_audit.erasable_values WHERE table_name = 'prot_patients';
CREATE FUNCTION pg_temp.reads_of_kept_values(since timestamptz) RETURNS SETOF text
LANGUAGE sql SET sensitive_audit.log_reads = off AS $$
	SELECT e.new_value::jsonb ->> 'columns'
	  FROM sensitive_audit.log_entries e JOIN sensitive_audit.log_contexts c ON c.id = e.context
	 WHERE c.operation = 'READ' AND c.table_name = 'erasable_values' AND e.event_time >= since
	 ORDER BY e.event_time, e.seq $$;
SELECT set_config('sa.before_drop', :'before_drop', false) IS NOT NULL AS noted;
DO $$
BEGIN
	FOR i IN 1..200 LOOP
		EXIT WHEN EXISTS (SELECT FROM pg_temp.reads_of_kept_values(current_setting('sa.before_drop')::timestamptz));
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
SELECT * FROM pg_temp.reads_of_kept_values(:'before_drop');
REVOKE ALL ON sensitive_audit.log FROM regress_prot_auditor;
REVOKE ALL ON FUNCTION sensitive_audit.fingerprint(regclass, name, text) FROM regress_prot_auditor;
REVOKE ALL ON FUNCTION sensitive_audit.erase(regclass, jsonb) FROM regress_prot_dpo;
REVOKE ALL ON FUNCTION sensitive_audit.erase(text, text, jsonb) FROM regress_prot_dpo;
REVOKE ALL ON SCHEMA sensitive_audit FROM regress_prot_owner, regress_prot_clerk, regress_prot_auditor,
	regress_prot_dpo;
REVOKE CREATE ON SCHEMA public FROM regress_prot_owner;
DROP ROLE regress_prot_owner, regress_prot_clerk, regress_prot_auditor, regress_prot_dpo;
