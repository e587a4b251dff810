-- Bad input gets a clear error and changes nothing.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
CREATE TABLE victims (id int PRIMARY KEY, secret text, cash money, c text);
CREATE VIEW victims_v AS SELECT * FROM victims;
CREATE MATERIALIZED VIEW victims_mv AS SELECT * FROM victims;
CREATE FOREIGN DATA WRAPPER dummy_fdw;
CREATE SERVER dummy_srv FOREIGN DATA WRAPPER dummy_fdw;
CREATE FOREIGN TABLE victims_ft (id int, secret text) SERVER dummy_srv;
CREATE TYPE wallet AS (amount money);
CREATE TABLE wallets (id int, w wallet, ws wallet[]);
CREATE TABLE parted (id int, secret text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE SEQUENCE some_seq;

SELECT count(*) AS entries_before FROM sensitive_audit.log \gset

SELECT sensitive_audit.tag('no_such_table', 'secret');
SELECT sensitive_audit.tag('victims', 'no_such_column');
SELECT sensitive_audit.tag('victims', 'secret', 'no_such_column');	-- all or nothing
SELECT sensitive_audit.tag('victims', 'ctid');
SELECT sensitive_audit.tag('victims_v', 'secret');
SELECT sensitive_audit.tag('victims_mv', 'secret');
SELECT sensitive_audit.tag('victims_ft', 'secret');
SELECT sensitive_audit.tag('some_seq', 'last_value');
SELECT sensitive_audit.tag('pg_catalog.pg_class', 'relname');
SELECT sensitive_audit.tag('pg_catalog.pg_authid', 'rolpassword');
SELECT sensitive_audit.tag('information_schema.sql_features', 'feature_name');
SELECT sensitive_audit.tag('sensitive_audit.log', 'new_value');
SELECT sensitive_audit.tag('sensitive_audit.log_entries', 'new_value');
SELECT sensitive_audit.tag('victims', 'cash');
SELECT sensitive_audit.tag('wallets', 'w');
SELECT sensitive_audit.tag('wallets', 'ws');
SELECT sensitive_audit.tag('parted_1', 'secret');
SELECT sensitive_audit.tag('victims', VARIADIC ARRAY[]::name[]);
SELECT sensitive_audit.tag('victims', VARIADIC ARRAY['secret', NULL]::name[]);
SELECT sensitive_audit.tag(NULL, 'secret');
SELECT sensitive_audit.untag('victims_v', 'secret');
SELECT sensitive_audit.untag('victims', 'no_such_column');

-- nothing was tagged, nothing recorded, no trigger created
SELECT count(*) - :entries_before AS new_entries FROM sensitive_audit.log;
SELECT count(*) FROM sensitive_audit.tagged_columns WHERE table_name LIKE 'victims%' OR table_name IN ('wallets', 'parted', 'parted_1');
SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sensitive_audit%'
   AND tgrelid IN ('victims'::regclass, 'wallets'::regclass, 'parted'::regclass, 'parted_1'::regclass);

-- the capture functions refuse to be called other than as their triggers
SELECT sensitive_audit.capture();
CREATE TRIGGER wrong BEFORE INSERT ON victims FOR EACH ROW EXECUTE FUNCTION sensitive_audit.capture();
INSERT INTO victims VALUES (1, 's', 1, 'c');
DROP TRIGGER wrong ON victims;
SELECT count(*) - :entries_before AS new_entries FROM sensitive_audit.log;
