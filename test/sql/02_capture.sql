-- Every path that changes a tagged column is captured, in the same
-- transaction, with only really changed columns on UPDATE.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
CREATE TABLE accounts (
	id int PRIMARY KEY,
	owner text,
	iban text,
	balance numeric,
	note text
);
SELECT sensitive_audit.tag('accounts', 'iban', 'balance');

CREATE VIEW acct_log AS
SELECT operation, column_name, row_key, row_key_source, old_value, new_value
  FROM sensitive_audit.log
 WHERE table_name = 'accounts' AND operation NOT IN ('TAG', 'UNTAG')
 ORDER BY txid, seq;

-- INSERT: new values of every tagged column, NULL included
INSERT INTO accounts VALUES (1, 'ann', 'DE01', 100, 'a'), (2, 'bob', NULL, 200, 'b');
SELECT * FROM acct_log;

-- UPDATE: only columns whose value really changed
UPDATE accounts SET iban = 'DE01', balance = 150 WHERE id = 1;
UPDATE accounts SET iban = 'DE02' WHERE id = 2;
SELECT * FROM acct_log WHERE operation = 'UPDATE';

-- UPDATE of untagged columns only: nothing
UPDATE accounts SET note = 'changed', owner = 'ann2';
SELECT count(*) FROM acct_log;

-- numeric 150 -> 150.0 is a change of the recorded text
UPDATE accounts SET balance = 150.0 WHERE id = 1;
SELECT old_value, new_value FROM acct_log WHERE operation = 'UPDATE' AND column_name = 'balance';

-- rolled back statements, transactions and savepoints leave nothing
BEGIN;
UPDATE accounts SET balance = 0;
ROLLBACK;
BEGIN;
SAVEPOINT a;
UPDATE accounts SET balance = -1 WHERE id = 1;
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
UPDATE accounts SET balance = 151 WHERE id = 1;
RELEASE SAVEPOINT b;
COMMIT;
UPDATE accounts SET balance = balance / 0;
DO $$
BEGIN
	UPDATE accounts SET iban = 'lost' WHERE id = 2;
	RAISE EXCEPTION 'boom';
EXCEPTION WHEN OTHERS THEN
	UPDATE accounts SET iban = 'kept' WHERE id = 2;
END;
$$;
SELECT old_value, new_value FROM acct_log WHERE new_value IN ('0', '-1', '151', 'lost', 'kept') OR old_value IN ('lost');

-- DELETE: old values
DELETE FROM accounts WHERE id = 2;
SELECT * FROM acct_log WHERE operation = 'DELETE';

-- COPY FROM
COPY accounts (id, owner, iban, balance) FROM STDIN;
3	carl	FR03	300
\.
SELECT * FROM acct_log WHERE row_key = '{"id": "3"}';

-- INSERT ... ON CONFLICT DO UPDATE and DO NOTHING
INSERT INTO accounts VALUES (3, 'carl', 'FR04', 300) ON CONFLICT (id) DO UPDATE SET iban = excluded.iban;
INSERT INTO accounts VALUES (3, 'carl', 'FR05', 300) ON CONFLICT (id) DO NOTHING;
SELECT operation, column_name, old_value, new_value FROM acct_log WHERE row_key = '{"id": "3"}' AND operation = 'UPDATE';

-- MERGE
MERGE INTO accounts a
USING (VALUES (3, 'FR06'), (4, 'IT04')) AS v(id, iban) ON a.id = v.id
WHEN MATCHED THEN UPDATE SET iban = v.iban
WHEN NOT MATCHED THEN INSERT (id, owner, iban, balance) VALUES (v.id, 'dan', v.iban, 1);
SELECT operation, column_name, row_key, old_value, new_value FROM acct_log WHERE new_value IN ('FR06', 'IT04', '1');

-- writes under session_replication_role = replica (logical apply runs so)
SET session_replication_role = replica;
UPDATE accounts SET balance = 999 WHERE id = 4;
RESET session_replication_role;
SELECT operation, old_value, new_value FROM acct_log WHERE new_value = '999';

-- TRUNCATE: the tagged values of every row it removes
TRUNCATE accounts;
SELECT operation, column_name, row_key, old_value FROM acct_log WHERE operation = 'TRUNCATE' ORDER BY row_key, column_name;

-- a TRUNCATE rolled back leaves nothing
INSERT INTO accounts VALUES (5, 'eve', 'ES05', 5);
BEGIN;
TRUNCATE accounts;
ROLLBACK;
SELECT count(*) FROM acct_log WHERE operation = 'TRUNCATE';

-- who and when
SELECT session_role = session_user AS session_ok, effective_role = current_user AS effective_ok,
	   application_name, client_addr IS NULL AS unix_socket, backend_pid = pg_backend_pid() AS pid_ok,
	   event_time <= now() AS time_ok, txid IS NOT NULL AS has_txid, format
  FROM sensitive_audit.log WHERE table_name = 'accounts' AND new_value = 'ES05';

-- all entries of one transaction share its txid, which is the writer's
BEGIN;
UPDATE accounts SET iban = 'ES06', balance = 6 WHERE id = 5;
SELECT pg_current_xact_id() AS xid \gset
COMMIT;
SELECT count(*), bool_and(txid = :'xid'::xid8) FROM sensitive_audit.log
 WHERE table_name = 'accounts' AND new_value IN ('ES06', '6');

-- row key: replica identity when there is no primary key, else the tagged values
CREATE TABLE nokey (code text NOT NULL, secret text, other text);
CREATE UNIQUE INDEX nokey_code ON nokey (code);
ALTER TABLE nokey REPLICA IDENTITY USING INDEX nokey_code;
CREATE TABLE bare (secret text, pin int);
SELECT sensitive_audit.tag('nokey', 'secret');
SELECT sensitive_audit.tag('bare', 'secret', 'pin');
INSERT INTO nokey VALUES ('k1', 's1', 'o');
INSERT INTO bare VALUES ('s2', 42);
SELECT table_name, column_name, row_key, row_key_source FROM sensitive_audit.log
 WHERE table_name IN ('nokey', 'bare') AND operation = 'INSERT' ORDER BY table_name, column_name;

-- JSON escaping in the row key round-trips through jsonb
CREATE TABLE oddkeys ("we""ird key" text PRIMARY KEY, secret text);
SELECT sensitive_audit.tag('oddkeys', 'secret');
INSERT INTO oddkeys VALUES (E'tab\there "q" \\ é', 'x');
SELECT row_key FROM sensitive_audit.log WHERE table_name = 'oddkeys' AND operation = 'INSERT';

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
