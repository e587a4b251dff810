-- Authorization changes are recorded in the transaction that makes them:
-- GRANT and REVOKE of privileges on every kind of object, ALTER DEFAULT
-- PRIVILEGES, CREATE / ALTER / DROP ROLE, role membership and SECURITY
-- LABEL.  A rolled-back change leaves nothing, and no password, in clear or
-- hashed, ever reaches the log.
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
