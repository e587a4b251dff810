-- Authorization changes are recorded in the transaction that makes them:
-- GRANT and REVOKE of privileges on every kind of object, ALTER DEFAULT
-- PRIVILEGES, CREATE / ALTER / DROP ROLE, role membership, SECURITY LABEL
-- and changes of ownership.  A rolled-back change leaves nothing, and no
-- password, in clear or hashed, ever reaches the log.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never
SELECT pg_current_xact_id() AS start \gset

-- roles and their attributes
CREATE ROLE regress_sa14_alice;
CREATE ROLE regress_sa14_admin SUPERUSER BYPASSRLS LOGIN PASSWORD 'sa14-Secret-pw'
	CONNECTION LIMIT 3 VALID UNTIL '2100-01-01 00:00:00+00';
SELECT rolpassword AS pwhash FROM pg_catalog.pg_authid WHERE rolname = 'regress_sa14_admin' \gset
ALTER ROLE regress_sa14_admin NOSUPERUSER NOBYPASSRLS;
ALTER ROLE regress_sa14_admin PASSWORD 'sa14-Other-pw';
SELECT rolpassword AS pwhash2 FROM pg_catalog.pg_authid WHERE rolname = 'regress_sa14_admin' \gset
ALTER ROLE regress_sa14_admin PASSWORD NULL;
ALTER ROLE regress_sa14_alice SET work_mem = '8MB';
ALTER ROLE regress_sa14_alice RENAME TO regress_sa14_alicia;

-- privileges on a table, its columns, a schema, a function, a sequence, the database
CREATE SCHEMA sa14;
CREATE TABLE sa14.t (id int PRIMARY KEY, secret text, note text);
CREATE SEQUENCE sa14.s;
CREATE FUNCTION sa14.f(integer, text) RETURNS integer LANGUAGE sql AS 'SELECT $1';
GRANT SELECT, INSERT ON sa14.t TO regress_sa14_alicia WITH GRANT OPTION;
GRANT SELECT (secret), UPDATE (secret, note) ON sa14.t TO regress_sa14_alicia;
REVOKE INSERT ON TABLE sa14.t FROM regress_sa14_alicia CASCADE;
REVOKE GRANT OPTION FOR SELECT ON sa14.t FROM regress_sa14_alicia;
GRANT USAGE ON SCHEMA sa14 TO regress_sa14_alicia;
GRANT EXECUTE ON FUNCTION sa14.f(integer, text) TO regress_sa14_alicia, PUBLIC;
REVOKE ALL ON FUNCTION sa14.f(integer, text) FROM PUBLIC;
GRANT USAGE, SELECT ON SEQUENCE sa14.s TO regress_sa14_alicia;
GRANT CONNECT, TEMPORARY ON DATABASE contrib_regression TO regress_sa14_alicia;
REVOKE CONNECT ON DATABASE contrib_regression FROM regress_sa14_alicia;
GRANT SELECT ON ALL TABLES IN SCHEMA sa14 TO regress_sa14_alicia;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_sa14_admin IN SCHEMA sa14 GRANT SELECT ON TABLES TO regress_sa14_alicia;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_sa14_admin REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- membership
GRANT regress_sa14_admin TO regress_sa14_alicia WITH ADMIN OPTION;
REVOKE ADMIN OPTION FOR regress_sa14_admin FROM regress_sa14_alicia;
REVOKE regress_sa14_admin FROM regress_sa14_alicia;
ALTER GROUP regress_sa14_admin ADD USER regress_sa14_alicia;
ALTER GROUP regress_sa14_admin DROP USER regress_sa14_alicia;

-- security labels (this provider's label also tags and untags the column)
SECURITY LABEL FOR sensitive_audit ON COLUMN sa14.t.secret IS 'sensitive';
SECURITY LABEL FOR sensitive_audit ON COLUMN sa14.t.secret IS NULL;

-- rolled back: nothing is recorded, also not what a savepoint undid
BEGIN;
GRANT DELETE ON sa14.t TO regress_sa14_alicia;
CREATE ROLE regress_sa14_ghost;
ROLLBACK;
BEGIN;
SAVEPOINT before_truncate;
GRANT TRUNCATE ON sa14.t TO regress_sa14_alicia;
ROLLBACK TO SAVEPOINT before_truncate;
GRANT REFERENCES ON sa14.t TO regress_sa14_alicia;
COMMIT;
-- a failed command records nothing either
GRANT SELECT ON sa14.t TO regress_sa14_nobody;

-- from inside a function, too
DO $$BEGIN EXECUTE 'GRANT TRIGGER ON sa14.t TO regress_sa14_alicia'; END$$;

-- dropping: only the roles that existed are recorded
DROP OWNED BY regress_sa14_alicia, regress_sa14_admin;
DROP ROLE regress_sa14_alicia, regress_sa14_admin;
DROP ROLE IF EXISTS regress_sa14_nobody;

SELECT operation, table_schema, table_name, column_name, new_value,
	   session_role = session_user AND effective_role = current_user AS who
  FROM sensitive_audit.log
 WHERE txid >= :'start'::pg_catalog.xid8
   AND operation NOT IN ('TAG', 'UNTAG')
 ORDER BY event_time, chain, seq;

-- the label's TAG and UNTAG are there as well
SELECT operation, table_schema, table_name, column_name
  FROM sensitive_audit.log
 WHERE txid >= :'start'::pg_catalog.xid8 AND operation IN ('TAG', 'UNTAG')
 ORDER BY event_time, chain, seq;

-- nothing the rolled-back transactions did
SELECT count(*) AS rolled_back_entries
  FROM sensitive_audit.log
 WHERE txid >= :'start'::pg_catalog.xid8
   AND (new_value LIKE '%DELETE%' OR new_value LIKE '%TRUNCATE%' OR new_value LIKE '%ghost%'
		OR new_value LIKE '%regress_sa14_nobody%');

-- no password, in clear or hashed, anywhere in the log (the hashes are real ones)
SELECT :'pwhash' LIKE 'SCRAM-SHA-256$%' AND :'pwhash2' LIKE 'SCRAM-SHA-256$%' AS hashes_known;
SELECT count(*) AS password_traces
  FROM sensitive_audit.log l
 WHERE strpos(l::text, 'sa14-Secret-pw') > 0 OR strpos(l::text, 'sa14-Other-pw') > 0
	OR strpos(l::text, :'pwhash') > 0 OR strpos(l::text, :'pwhash2') > 0
	OR l::text LIKE '%SCRAM-SHA-256$%';
SELECT count(*) AS password_traces_in_contexts
  FROM sensitive_audit.log_contexts c
 WHERE strpos(c::text, 'sa14-Secret-pw') > 0 OR strpos(c::text, :'pwhash') > 0;

SELECT bool_and(ok) AS all_chains_ok FROM sensitive_audit.verify();

DROP SCHEMA sa14 CASCADE;

-- changes of ownership: an owner holds every privilege on its object and can
-- grant them, so ALTER ... OWNER TO and REASSIGN OWNED are recorded, one
-- ALTER OWNER entry per object whose owner really changed
SELECT pg_current_xact_id() AS owners_start \gset
CREATE ROLE regress_sa14_owner;
CREATE ROLE regress_sa14_mallory;
CREATE ROLE regress_sa14_eve;
CREATE SCHEMA sa14_own;
CREATE TABLE sa14_own.tab (id serial PRIMARY KEY, v text);
CREATE VIEW sa14_own.vw AS SELECT 1 AS one;
CREATE SEQUENCE sa14_own.seq;
CREATE MATERIALIZED VIEW sa14_own.mv AS SELECT 1 AS one;
CREATE FOREIGN DATA WRAPPER sa14_fdw;
CREATE SERVER sa14_srv FOREIGN DATA WRAPPER sa14_fdw;
CREATE FOREIGN TABLE sa14_own.ft (a int) SERVER sa14_srv;
CREATE FUNCTION sa14_own.fn(integer, text) RETURNS integer LANGUAGE sql AS 'SELECT $1';
CREATE PROCEDURE sa14_own.pr() LANGUAGE sql AS '';
CREATE TYPE sa14_own.comp AS (a int, b text);
CREATE TYPE sa14_own.mood AS ENUM ('calm');
CREATE DOMAIN sa14_own.dom AS integer;
CREATE TABLE sa14_own.parts (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE sa14_own.parts_1 PARTITION OF sa14_own.parts FOR VALUES FROM (0) TO (10);
SELECT lo_create(914001) AS lo;

ALTER TABLE sa14_own.tab OWNER TO regress_sa14_owner;
ALTER VIEW sa14_own.vw OWNER TO regress_sa14_owner;
ALTER SEQUENCE sa14_own.seq OWNER TO regress_sa14_owner;
ALTER MATERIALIZED VIEW sa14_own.mv OWNER TO regress_sa14_owner;
ALTER FOREIGN TABLE sa14_own.ft OWNER TO regress_sa14_owner;
ALTER SERVER sa14_srv OWNER TO regress_sa14_owner;
ALTER FUNCTION sa14_own.fn(integer, text) OWNER TO regress_sa14_owner;
ALTER PROCEDURE sa14_own.pr() OWNER TO regress_sa14_owner;
ALTER TYPE sa14_own.comp OWNER TO regress_sa14_owner;
ALTER TYPE sa14_own.mood OWNER TO regress_sa14_owner;
ALTER DOMAIN sa14_own.dom OWNER TO regress_sa14_owner;
ALTER SCHEMA sa14_own OWNER TO regress_sa14_owner;
ALTER LARGE OBJECT 914001 OWNER TO regress_sa14_owner;
ALTER DATABASE contrib_regression OWNER TO regress_sa14_owner;
-- a partitioned table: ALTER TABLE ... OWNER TO changes the table alone, not
-- its partitions, and only what changed is recorded
ALTER TABLE sa14_own.parts OWNER TO regress_sa14_owner;
SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner) AS owner
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'sa14_own'::pg_catalog.regnamespace AND c.relname LIKE 'parts%'
 ORDER BY c.relname;
-- to the owner it already has: nothing changes, nothing is recorded
ALTER TABLE sa14_own.tab OWNER TO regress_sa14_owner;
-- rolled back, undone by a savepoint, or failed: nothing is recorded
BEGIN;
ALTER VIEW sa14_own.vw OWNER TO regress_sa14_eve;
ALTER DATABASE contrib_regression OWNER TO regress_sa14_eve;
ROLLBACK;
BEGIN;
SAVEPOINT before_owner;
ALTER FUNCTION sa14_own.fn(integer, text) OWNER TO regress_sa14_eve;
REASSIGN OWNED BY regress_sa14_owner TO regress_sa14_eve;
ROLLBACK TO SAVEPOINT before_owner;
COMMIT;
ALTER TABLE sa14_own.tab OWNER TO regress_sa14_nobody;
-- from inside a function, too
DO $$BEGIN EXECUTE 'ALTER SEQUENCE sa14_own.seq OWNER TO regress_sa14_mallory'; END$$;

SELECT operation, table_schema, table_name, old_value, new_value,
	   session_role = session_user AND effective_role = current_user AS who
  FROM sensitive_audit.log
 WHERE txid >= :'owners_start'::pg_catalog.xid8 AND operation = 'ALTER OWNER'
 ORDER BY event_time, chain, seq;

-- REASSIGN OWNED: an entry for each object it gave away, the database
-- included; the sequence already given to mallory and the partition, never
-- owned by the role, are not among them
SELECT pg_current_xact_id() AS reassign_start \gset
REASSIGN OWNED BY regress_sa14_owner TO regress_sa14_mallory;
SELECT operation, table_schema, table_name, old_value, new_value,
	   session_role = session_user AND effective_role = current_user AS who
  FROM sensitive_audit.log
 WHERE txid >= :'reassign_start'::pg_catalog.xid8 AND operation = 'ALTER OWNER'
 ORDER BY table_schema COLLATE "C" NULLS FIRST, table_name COLLATE "C", new_value COLLATE "C";
SELECT count(*) AS owned_by_the_old_role
  FROM pg_catalog.pg_class c
 WHERE c.relowner = 'regress_sa14_owner'::pg_catalog.regrole;

-- nothing the rolled-back, undone or failed commands did
SELECT count(*) AS undone_owner_entries
  FROM sensitive_audit.log
 WHERE txid >= :'owners_start'::pg_catalog.xid8 AND operation = 'ALTER OWNER'
   AND (new_value LIKE '%regress_sa14_eve%' OR new_value LIKE '%regress_sa14_nobody%');

SELECT bool_and(ok) AS all_chains_ok_after_owners FROM sensitive_audit.verify();

SET client_min_messages = warning;
ALTER DATABASE contrib_regression OWNER TO postgres;
SELECT lo_unlink(914001) AS lo_unlinked;
DROP SCHEMA sa14_own CASCADE;
DROP SERVER sa14_srv;
DROP FOREIGN DATA WRAPPER sa14_fdw;
DROP ROLE regress_sa14_owner, regress_sa14_mallory, regress_sa14_eve;
RESET client_min_messages;

-- a log that has not begun: a dump's script gives each object its owner
-- before it loads the log, which loads only while it is empty, so changes of
-- ownership are recorded from the log's first entry on (an entry this
-- transaction queues counts)
CREATE ROLE regress_sa14_heir;
CREATE DATABASE sa14_fresh;
\c sa14_fresh
-- (reading the log would begin it: a READ entry)
SET sensitive_audit.log_reads = off;
CREATE EXTENSION sensitive_audit;
CREATE TABLE public.t (id int);
ALTER TABLE public.t OWNER TO regress_sa14_heir;
SELECT count(*) AS entries_before_the_first FROM sensitive_audit.log;
BEGIN;
GRANT SELECT ON public.t TO PUBLIC;
ALTER TABLE public.t OWNER TO postgres;
COMMIT;
ALTER TABLE public.t OWNER TO regress_sa14_heir;
SELECT operation, table_schema, table_name, old_value, new_value
  FROM sensitive_audit.log
 ORDER BY event_time, chain, seq;
SELECT bool_and(ok) AS all_chains_ok_in_fresh FROM sensitive_audit.verify();
\c contrib_regression
DROP DATABASE sa14_fresh;
DROP ROLE regress_sa14_heir;
