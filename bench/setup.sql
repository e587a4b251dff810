-- bench/setup.sql — helper functions bench/run.sh uses to build and measure the variants.
--
-- Every variant is the same table, created by bench_create_table():
--     t_<variant>(id int PRIMARY KEY, name text, ssn text, balance numeric, note text, counter int)
-- loaded with ids 1..rows, plus two sequences that the INSERT and DELETE scripts share:
-- t_<variant>_ins hands out new ids (from 1,000,001 up) and t_<variant>_del walks the same
-- ids behind it, so that every DELETE removes one row an earlier INSERT (or a top-up) made.
-- bench_instrument() then turns auditing of name, ssn and balance on, the variant's way:
--     plain           nothing
--     sa              sensitive_audit.tag()
--     plpgsql_chain   the hash-chained PL/pgSQL trigger of bench/plpgsql_chain.sql
--     plpgsql_jsonb   the same trigger without a chain
--     pgaudit         pgaudit object audit: the role auditor gets INSERT, DELETE and
--                     UPDATE (name, ssn, balance), so that only statements writing a tagged
--                     column are logged (sessions set pgaudit.role = auditor)
-- Needs pgcrypto, sensitive_audit and bench/plpgsql_chain.sql in the same database.

CREATE FUNCTION bench_create_table(tbl text, nrows int)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
	IF nrows >= 1000000 THEN
		RAISE EXCEPTION 'at most 999999 rows: new rows get ids from 1000001 up';
	END IF;
	EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, name text, ssn text, balance numeric, '
				   'note text, counter int)', tbl);
	EXECUTE format('INSERT INTO %I SELECT g, ''name '' || g, lpad(((g * 7919) %% 1000000000)::text, 9, ''0''), '
				   '100 + (g %% 10000) / 100.0, ''note'', 0 FROM generate_series(1, %s) g', tbl, nrows);
	EXECUTE format('CREATE SEQUENCE %I START 1000001', tbl || '_ins');
	EXECUTE format('CREATE SEQUENCE %I START 1000001', tbl || '_del');
END;
$$;

CREATE FUNCTION bench_instrument(tbl text, variant text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
	CASE variant
		WHEN 'plain' THEN
			NULL;
		WHEN 'sa' THEN
			PERFORM sensitive_audit.tag(tbl::regclass, 'name', 'ssn', 'balance');
		WHEN 'plpgsql_chain' THEN
			EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR DELETE OR UPDATE OF name, ssn, balance '
						   'ON %I FOR EACH ROW EXECUTE FUNCTION bench_audit_chain_trigger(''name'', ''ssn'', ''balance'')',
						   tbl);
		WHEN 'plpgsql_jsonb' THEN
			EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR DELETE OR UPDATE OF name, ssn, balance '
						   'ON %I FOR EACH ROW EXECUTE FUNCTION bench_audit_jsonb_trigger(''name'', ''ssn'', ''balance'')',
						   tbl);
		WHEN 'pgaudit' THEN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'auditor') THEN
				CREATE ROLE auditor NOLOGIN;
			END IF;
			EXECUTE format('GRANT INSERT, DELETE, UPDATE (name, ssn, balance) ON %I TO auditor', tbl);
		ELSE
			RAISE EXCEPTION 'unknown variant %', variant;
	END CASE;
END;
$$;

-- Rows a DELETE run can still remove: those above the delete sequence.
CREATE FUNCTION bench_pool(tbl text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
	last_deleted bigint;
	n			bigint;
BEGIN
	EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %I',
				   tbl || '_del') INTO last_deleted;
	EXECUTE format('SELECT count(*) FROM %I WHERE id > $1', tbl) INTO n USING last_deleted;
	RETURN n;
END;
$$;

-- Inserts n new rows (ids from the insert sequence) for DELETE runs to remove; done outside
-- the timed runs, in batches so that no single transaction's audit trail gets huge.
CREATE PROCEDURE bench_top_up(tbl text, n bigint)
LANGUAGE plpgsql
AS $$
DECLARE
	batch		bigint;
BEGIN
	WHILE n > 0 LOOP
		batch := least(n, 20000);
		EXECUTE format('INSERT INTO %I SELECT nextval(%L), ''name '' || g, lpad(g::text, 9, ''0''), '
					   '100 + (g %% 10000) / 100.0, ''note'', 0 FROM generate_series(1, %s) g',
					   tbl, tbl || '_ins', batch);
		COMMIT;
		n := n - batch;
	END LOOP;
END;
$$;

-- Verifies a whole log once and says how long it took: which = 'sa' runs
-- sensitive_audit.verify(), which = 'plpgsql_chain' runs bench_audit_chain_verify().
CREATE FUNCTION bench_timed_verify(which text, OUT seconds float8, OUT entries bigint, OUT ok boolean)
LANGUAGE plpgsql
AS $$
DECLARE
	t0			timestamptz := clock_timestamp();
BEGIN
	IF which = 'sa' THEN
		SELECT sum(v.entries), bool_and(v.ok) INTO entries, ok FROM sensitive_audit.verify() v;
	ELSIF which = 'plpgsql_chain' THEN
		SELECT v.entries, v.ok INTO entries, ok FROM bench_audit_chain_verify() v;
	ELSE
		RAISE EXCEPTION 'unknown verifier %', which;
	END IF;
	seconds := extract(epoch FROM clock_timestamp() - t0);
END;
$$;
