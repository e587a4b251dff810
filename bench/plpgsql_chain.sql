-- bench/plpgsql_chain.sql — the hand-rolled alternatives sensitive_audit is measured against.
--
-- Two column-level PL/pgSQL audit triggers, written the way they usually are:
--
--   bench_audit_chain_trigger()  the common "blockchain-ish" design: every audited change takes
--       one advisory lock (pg_advisory_xact_lock on a constant, held to commit), reads the
--       previous entry's hash from the log's last row (ORDER BY id DESC LIMIT 1), hashes the
--       entry's fields and that hash with pgcrypto's digest(..., 'sha256'), and inserts one
--       row per changed tagged column into bench_audit_chain.
--   bench_audit_jsonb_trigger()  the same trigger without any integrity fields: one jsonb-ish
--       row per changed tagged column into bench_audit_jsonb.
--
-- Both are generic: the tagged columns are the trigger's arguments, and the trigger is
-- created AFTER INSERT OR DELETE OR UPDATE OF <tagged columns> so that an UPDATE naming no
-- tagged column does not fire it (the same rule sensitive_audit's capture trigger uses).
-- The audited table must have a column "id" (its key).
--
-- bench_audit_chain_verify() walks the chain in order, recomputing every digest, as a
-- PL/pgSQL verifier of such a log would; bench/run.sh times it against
-- sensitive_audit.verify() over the same number of entries.
--
-- Needs pgcrypto.  Everything here lives in the current schema (public in bench/run.sh).

CREATE TABLE bench_audit_chain (
	id			bigint PRIMARY KEY,
	event_time	timestamptz NOT NULL,
	txid		bigint NOT NULL,
	operation	text NOT NULL,
	table_name	text NOT NULL,
	column_name text NOT NULL,
	row_key		jsonb,
	old_value	text,
	new_value	text,
	session_role text NOT NULL,
	prev_hash	bytea NOT NULL,
	hash		bytea NOT NULL
);
CREATE SEQUENCE bench_audit_chain_id_seq;

-- The entry's hash input: its fields, quoted so that NULL, '' and separators are unambiguous,
-- then the previous entry's hash.  (Kept inline in the trigger and the verifier, as a
-- hand-written design would; both must build the same text.)
CREATE FUNCTION bench_audit_chain_trigger()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
	o			jsonb;
	n			jsonb;
	k			jsonb;
	col			text;
	ov			text;
	nv			text;
	v_id		bigint;
	v_prev		bytea;
	v_hash		bytea;
	v_time		timestamptz := now();
	v_txid		bigint := txid_current();
	v_who		text := session_user;
BEGIN
	IF TG_OP <> 'INSERT' THEN
		o := to_jsonb(OLD);
	END IF;
	IF TG_OP <> 'DELETE' THEN
		n := to_jsonb(NEW);
	END IF;
	k := jsonb_build_object('id', coalesce(n, o) -> 'id');
	FOREACH col IN ARRAY TG_ARGV LOOP
		ov := o ->> col;
		nv := n ->> col;
		CONTINUE WHEN TG_OP = 'UPDATE' AND ov IS NOT DISTINCT FROM nv;

		-- One chain: serialize writers until commit, then extend the last entry.
		PERFORM pg_advisory_xact_lock(7271001);
		SELECT a.hash INTO v_prev FROM bench_audit_chain a ORDER BY a.id DESC LIMIT 1;
		v_prev := coalesce(v_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
		v_id := nextval('bench_audit_chain_id_seq');
		v_hash := digest(convert_to(format('%s|%s|%s|%L|%L|%L|%L|%L|%L|%L',
										   v_id, v_txid, v_time, TG_OP, TG_TABLE_NAME, col,
										   k, ov, nv, v_who), 'UTF8') || v_prev,
						 'sha256');
		INSERT INTO bench_audit_chain
			VALUES (v_id, v_time, v_txid, TG_OP, TG_TABLE_NAME, col, k, ov, nv, v_who,
					v_prev, v_hash);
	END LOOP;
	RETURN NULL;
END;
$$;

-- Walks the whole chain in id order; returns how many entries it checked, whether all were
-- intact, and the first entry whose link or digest does not match.
CREATE FUNCTION bench_audit_chain_verify(OUT entries bigint, OUT ok boolean, OUT first_bad_id bigint)
LANGUAGE plpgsql
AS $$
DECLARE
	r			record;
	v_prev		bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
	v_hash		bytea;
BEGIN
	entries := 0;
	ok := true;
	FOR r IN SELECT * FROM bench_audit_chain ORDER BY id LOOP
		entries := entries + 1;
		v_hash := digest(convert_to(format('%s|%s|%s|%L|%L|%L|%L|%L|%L|%L',
										   r.id, r.txid, r.event_time, r.operation, r.table_name,
										   r.column_name, r.row_key, r.old_value, r.new_value,
										   r.session_role), 'UTF8') || r.prev_hash,
						 'sha256');
		IF ok AND (r.prev_hash <> v_prev OR r.hash <> v_hash) THEN
			ok := false;
			first_bad_id := r.id;
		END IF;
		v_prev := r.hash;
	END LOOP;
END;
$$;

-- The same column-level trigger without a chain: a plain jsonb log.
CREATE TABLE bench_audit_jsonb (
	id			bigserial PRIMARY KEY,
	event_time	timestamptz NOT NULL DEFAULT now(),
	txid		bigint NOT NULL DEFAULT txid_current(),
	operation	text NOT NULL,
	table_name	text NOT NULL,
	column_name text NOT NULL,
	row_key		jsonb,
	old_value	jsonb,
	new_value	jsonb,
	session_role text NOT NULL DEFAULT session_user
);

CREATE FUNCTION bench_audit_jsonb_trigger()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
	o			jsonb;
	n			jsonb;
	k			jsonb;
	col			text;
BEGIN
	IF TG_OP <> 'INSERT' THEN
		o := to_jsonb(OLD);
	END IF;
	IF TG_OP <> 'DELETE' THEN
		n := to_jsonb(NEW);
	END IF;
	k := jsonb_build_object('id', coalesce(n, o) -> 'id');
	FOREACH col IN ARRAY TG_ARGV LOOP
		CONTINUE WHEN TG_OP = 'UPDATE' AND (o -> col) IS NOT DISTINCT FROM (n -> col);
		INSERT INTO bench_audit_jsonb (operation, table_name, column_name, row_key, old_value, new_value)
			VALUES (TG_OP, TG_TABLE_NAME, col, k, o -> col, n -> col);
	END LOOP;
	RETURN NULL;
END;
$$;
