-- More ways an owner could make the log say something else than what
-- happened, each refused or recorded.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
CREATE ROLE at_owner;
GRANT CREATE ON SCHEMA public TO at_owner;
GRANT USAGE ON SCHEMA sensitive_audit TO at_owner;
SET ROLE at_owner;

-- a tagged table's columns renamed through a parent or a type it is made to follow
CREATE TABLE c (id int PRIMARY KEY, ssn text, other text);
SELECT sensitive_audit.tag('c', 'ssn');
CREATE TABLE par (id int, ssn text, other text);
ALTER TABLE c INHERIT par;
CREATE TABLE dpar (id int, ssn text, other text) PARTITION BY RANGE (id);
ALTER TABLE dpar ATTACH PARTITION c FOR VALUES FROM (0) TO (10);
CREATE TYPE cty AS (id int, ssn text, other text);
ALTER TABLE c OF cty;
-- a parent that is itself tagged: renaming its tagged column recurses, and is recorded
CREATE TABLE tp (id int, ssn text, other text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE tp_1 PARTITION OF tp FOR VALUES FROM (0) TO (10);
SELECT sensitive_audit.tag('tp', 'ssn');
ALTER TABLE tp RENAME COLUMN ssn TO hidden;
ALTER TABLE tp RENAME COLUMN other TO ssn;
INSERT INTO tp VALUES (1, 'real', 'decoy');
RESET ROLE;
SELECT operation, table_name, column_name, new_value FROM sensitive_audit.log
 WHERE table_name LIKE 'tp%' AND operation IN ('RENAME COLUMN', 'INSERT') ORDER BY txid, seq;
SET ROLE at_owner;

-- a BEFORE TRUNCATE trigger firing after capture could write rows TRUNCATE then removes
CREATE FUNCTION trunc_writer() RETURNS trigger LANGUAGE plpgsql
	AS $$BEGIN INSERT INTO tp VALUES (2, 'sneaked', 'x'); RETURN NULL; END$$;
CREATE TRIGGER zzz BEFORE TRUNCATE ON tp_1 FOR EACH STATEMENT EXECUTE FUNCTION trunc_writer();
CREATE TRIGGER aaa BEFORE TRUNCATE ON tp_1 FOR EACH STATEMENT EXECUTE FUNCTION trunc_writer();
TRUNCATE tp_1;
RESET ROLE;
SELECT operation, row_key, old_value FROM sensitive_audit.log
 WHERE table_name = 'tp_1' AND operation = 'TRUNCATE' ORDER BY txid, seq;
SET ROLE at_owner;
DROP TRIGGER aaa ON tp_1;

-- a table whose row type a tagged column holds
CREATE TABLE addr (street text, city text);
CREATE TABLE comp (id int PRIMARY KEY, a addr);
SELECT sensitive_audit.tag('comp', 'a');
ALTER TABLE addr ADD COLUMN zip text;
ALTER TABLE addr DROP COLUMN street;
ALTER TABLE addr ALTER COLUMN city TYPE varchar(10);

-- a table renamed through ALTER INDEX, and a key column renamed
CREATE TABLE t (id int PRIMARY KEY, v text);
SELECT sensitive_audit.tag('t', 'v');
ALTER INDEX t RENAME TO t_real;
ALTER TABLE t_real RENAME COLUMN id TO ident;
RESET ROLE;
SELECT operation, table_name, column_name, old_value, new_value FROM sensitive_audit.log
 WHERE operation LIKE 'RENAME%' AND table_name IN ('t_real') ORDER BY txid, seq;

-- a partition with a primary key of its own under a root without one
SET ROLE at_owner;
CREATE TABLE q (id int, region text, ssn text) PARTITION BY LIST (region);
CREATE TABLE q_eu PARTITION OF q FOR VALUES IN ('eu');
SELECT sensitive_audit.tag('q', 'ssn');
ALTER TABLE q_eu ADD PRIMARY KEY (id);
INSERT INTO q VALUES (1, 'eu', 'S1');
UPDATE q SET id = 42 WHERE id = 1;
RESET ROLE;
SELECT operation, table_name, row_key, old_value, new_value FROM sensitive_audit.log
 WHERE table_name LIKE 'q%' AND operation IN ('INSERT', 'REKEY', 'UPDATE') ORDER BY txid, seq;

-- the schema of a partition renamed
CREATE SCHEMA at_s2;
GRANT ALL ON SCHEMA at_s2 TO at_owner;
SET ROLE at_owner;
CREATE TABLE r (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE at_s2.r_1 PARTITION OF r FOR VALUES FROM (0) TO (10);
SELECT sensitive_audit.tag('r', 'v');
RESET ROLE;
ALTER SCHEMA at_s2 RENAME TO at_s3;
SELECT operation, table_schema, table_name, old_value, new_value FROM sensitive_audit.log
 WHERE operation = 'RENAME SCHEMA' ORDER BY txid, seq;

-- rules, triggers and foreign keys on the log's tables: refused before any lock
SET ROLE at_owner;
CREATE RULE r AS ON INSERT TO sensitive_audit.log_entries DO INSTEAD NOTHING;
CREATE TRIGGER x BEFORE INSERT ON sensitive_audit.log_entries
	FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.log_guard();
CREATE TABLE fk (chain int, seq bigint, FOREIGN KEY (chain, seq) REFERENCES sensitive_audit.log_entries);
CREATE TABLE fk2 (chain int, seq bigint);
ALTER TABLE fk2 ADD FOREIGN KEY (chain, seq) REFERENCES sensitive_audit.log_entries;
RESET ROLE;

-- the log's tables stay part of the extension, so that pg_dump carries them
ALTER EXTENSION sensitive_audit DROP TABLE sensitive_audit.log_entries;
SELECT count(*) AS config_tables FROM pg_extension e, unnest(e.extconfig) c
 WHERE e.extname = 'sensitive_audit';

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
DROP OWNED BY at_owner CASCADE;
DROP SCHEMA at_s3 CASCADE;
DROP ROLE at_owner;
