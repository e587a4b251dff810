-- The log's storage: entries refer to shared contexts (operation, table,
-- column, value type, key source, who), stored once each.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
CREATE TABLE stored_accounts (id int PRIMARY KEY, iban text, owner text);
INSERT INTO stored_accounts SELECT g, 'DE' || g, 'o' || g FROM generate_series(1, 50) g;
SELECT sensitive_audit.tag('stored_accounts', 'iban', 'owner');
SET application_name = 'storage_test';

-- fifty transactions, one context per changed column
DO $$
BEGIN
	FOR i IN 1..50 LOOP
		UPDATE stored_accounts SET iban = iban || 'x' WHERE id = i;
		COMMIT;
	END LOOP;
END;
$$;
UPDATE stored_accounts SET owner = owner || 'y';
SELECT operation, column_name, count(*) AS entries, count(DISTINCT context) AS contexts
  FROM sensitive_audit.log WHERE application_name = 'storage_test'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS contexts_stored FROM sensitive_audit.log_contexts
 WHERE application_name = 'storage_test';

-- the view shows every stored field of an entry's context
SELECT operation, table_schema, table_name, column_name, row_key, row_key_source,
	   old_value, new_value, value_type, session_role = current_user AS by_me
  FROM sensitive_audit.log WHERE application_name = 'storage_test' AND row_key = '{"id": "7"}'
 ORDER BY seq;

-- a context first needed by a transaction that fails after its entries
-- were linked (PREPARE of a transaction that touched a temporary table
-- fails after the pre-commit work) is stored again by the next one
CREATE TEMP TABLE scratch (x int);
SET application_name = 'storage_test_abort';
BEGIN;
INSERT INTO scratch VALUES (1);
UPDATE stored_accounts SET iban = 'aborted' WHERE id = 1;
PREPARE TRANSACTION 'sa_storage_test';
UPDATE stored_accounts SET iban = 'committed' WHERE id = 1;
SELECT new_value, application_name FROM sensitive_audit.log
 WHERE application_name = 'storage_test_abort' ORDER BY seq;
SELECT count(*) AS entries_without_context FROM sensitive_audit.log_entries e
 WHERE NOT EXISTS (SELECT 1 FROM sensitive_audit.log_contexts c WHERE c.id = e.context);

-- the same after the extension is dropped and created again in this session
-- (the remembered contexts belong to the old tables)
SET sensitive_audit.allow_drop = on;
SET client_min_messages = warning;
DROP EXTENSION sensitive_audit CASCADE;
RESET client_min_messages;
RESET sensitive_audit.allow_drop;
CREATE EXTENSION sensitive_audit;
SELECT sensitive_audit.tag('stored_accounts', 'iban');
SET application_name = 'storage_test';
UPDATE stored_accounts SET iban = 'after reinstall' WHERE id = 2;
SELECT operation, column_name, new_value FROM sensitive_audit.log ORDER BY seq;
SELECT count(*) AS entries_without_context FROM sensitive_audit.log_entries e
 WHERE NOT EXISTS (SELECT 1 FROM sensitive_audit.log_contexts c WHERE c.id = e.context);
SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();

-- a transaction that needs many new contexts (here one per application
-- name) keeps no lock per context: 20,000 would not fit in the lock table
CREATE TABLE many_contexts (id int PRIMARY KEY, v text);
INSERT INTO many_contexts VALUES (1, 'v');
SELECT sensitive_audit.tag('many_contexts', 'v');
DO $$
BEGIN
	FOR i IN 1..20000 LOOP
		PERFORM set_config('application_name', 'many_contexts_' || i, true);
		UPDATE many_contexts SET v = 'v' || i WHERE id = 1;
	END LOOP;
END;
$$;
RESET application_name;
SELECT count(*) AS entries, count(DISTINCT application_name) AS application_names,
	   count(DISTINCT context) AS contexts
  FROM sensitive_audit.log WHERE table_name = 'many_contexts' AND operation = 'UPDATE';
SELECT count(*) AS entries_without_context FROM sensitive_audit.log_entries e
 WHERE NOT EXISTS (SELECT 1 FROM sensitive_audit.log_contexts c WHERE c.id = e.context);
SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
