-- Merkle trees, checkpoint bodies, stored checkpoints and proofs, checked
-- against an implementation of RFC 9162 and docs/FORMAT.md written in SQL.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.node(l bytea, r bytea) RETURNS bytea LANGUAGE sql IMMUTABLE
AS $$ SELECT pg_catalog.sha256('\x01'::bytea || l || r) $$;
CREATE FUNCTION pg_temp.leaf(d bytea) RETURNS bytea LANGUAGE sql IMMUTABLE
AS $$ SELECT pg_catalog.sha256('\x00'::bytea || d) $$;
CREATE FUNCTION pg_temp.b64(t text) RETURNS bytea LANGUAGE sql IMMUTABLE
AS $$ SELECT decode(t, 'base64') $$;

-- RFC 6962 MTH over leaf hashes
CREATE FUNCTION pg_temp.mth(h bytea[]) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	n int := coalesce(array_length(h, 1), 0);
	k int := 1;
BEGIN
	IF n = 0 THEN RETURN sha256(''); END IF;
	IF n = 1 THEN RETURN h[1]; END IF;
	WHILE k * 2 < n LOOP k := k * 2; END LOOP;
	RETURN pg_temp.node(pg_temp.mth(h[1:k]), pg_temp.mth(h[k + 1:n]));
END $$;

-- the root of a chain's first n entries, from the stored entry hashes
CREATE FUNCTION pg_temp.chain_root(c int, n bigint) RETURNS bytea LANGUAGE sql STABLE AS $$
	SELECT pg_temp.mth(array_agg(pg_temp.leaf(hash) ORDER BY seq))
	  FROM sensitive_audit.log_entries WHERE chain = c AND seq <= n $$;

-- RFC 9162 2.1.3.2: the root an inclusion proof leads to (NULL: malformed)
CREATE FUNCTION pg_temp.inclusion_root(p jsonb) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	fn bigint := (p->>'leaf_index')::bigint;
	sn bigint := (p->>'tree_size')::bigint - 1;
	r bytea := pg_temp.b64(p->>'leaf_hash');
	c bytea;
BEGIN
	IF fn > sn THEN RETURN NULL; END IF;
	FOR c IN SELECT pg_temp.b64(x) FROM jsonb_array_elements_text(p->'path') WITH ORDINALITY t(x, i) ORDER BY i LOOP
		IF sn = 0 THEN RETURN NULL; END IF;
		IF fn & 1 = 1 OR fn = sn THEN
			r := pg_temp.node(c, r);
			WHILE fn & 1 = 0 AND fn <> 0 LOOP fn := fn >> 1; sn := sn >> 1; END LOOP;
		ELSE
			r := pg_temp.node(r, c);
		END IF;
		fn := fn >> 1; sn := sn >> 1;
	END LOOP;
	IF sn <> 0 THEN RETURN NULL; END IF;
	RETURN r;
END $$;

-- RFC 9162 2.1.4.2: does a consistency proof lead from old_root to new_root?
CREATE FUNCTION pg_temp.consistent(p jsonb) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	m bigint := (p->>'old_size')::bigint;
	n bigint := (p->>'new_size')::bigint;
	old_root bytea := pg_temp.b64(p->>'old_root');
	new_root bytea := pg_temp.b64(p->>'new_root');
	path bytea[] := ARRAY(SELECT pg_temp.b64(x) FROM jsonb_array_elements_text(p->'path') WITH ORDINALITY t(x, i) ORDER BY i);
	fn bigint; sn bigint; fr bytea; sr bytea; c bytea; i int;
BEGIN
	IF m = n THEN RETURN cardinality(path) = 0 AND old_root = new_root; END IF;
	IF cardinality(path) = 0 THEN RETURN false; END IF;
	IF m & (m - 1) = 0 THEN path := old_root || path; END IF;
	fn := m - 1; sn := n - 1;
	WHILE fn & 1 = 1 LOOP fn := fn >> 1; sn := sn >> 1; END LOOP;
	fr := path[1]; sr := path[1];
	FOR i IN 2 .. cardinality(path) LOOP
		c := path[i];
		IF sn = 0 THEN RETURN false; END IF;
		IF fn & 1 = 1 OR fn = sn THEN
			fr := pg_temp.node(c, fr); sr := pg_temp.node(c, sr);
			WHILE fn & 1 = 0 AND fn <> 0 LOOP fn := fn >> 1; sn := sn >> 1; END LOOP;
		ELSE
			sr := pg_temp.node(sr, c);
		END IF;
		fn := fn >> 1; sn := sn >> 1;
	END LOOP;
	RETURN fr = old_root AND sr = new_root AND sn = 0;
END $$;

-- a body's chain lines
CREATE FUNCTION pg_temp.body_chains(body text, OUT chain int, OUT size bigint, OUT root bytea)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
	SELECT f[2]::int, f[3]::bigint, pg_temp.b64(f[4])
	  FROM regexp_split_to_table(body, E'\n') l, regexp_split_to_array(l, ' ') f
	 WHERE l LIKE 'chain %' $$;

-- a fake signature line: add_checkpoint() checks no signature, only that there is one
CREATE FUNCTION pg_temp.signed(body text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT body || E'\n\u2014 regress-signer ' || translate(encode(decode(repeat('0a', 68), 'hex'), 'base64'), E'\n', '') || E'\n' $$;

CREATE TABLE cp_t (id int PRIMARY KEY, v text);
SELECT sensitive_audit.tag('cp_t', 'v');
INSERT INTO cp_t SELECT g, 'v' || g FROM generate_series(1, 700) g;
UPDATE cp_t SET v = v || '!' WHERE id <= 10;
SELECT l.chain AS c FROM sensitive_audit.log l WHERE l.table_name = 'cp_t' AND l.operation = 'INSERT' AND l.new_value = 'v1' \gset

SELECT max(seq) AS size FROM sensitive_audit.log_entries WHERE chain = :c \gset
SELECT set_config('regress.c', :'c', false), set_config('regress.size', :'size', false) \gset
-- runs q; on error its SQLSTATE, message and detail, with what differs from run to run
-- (the log id, the chain's number and size) replaced by words
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	msg text; det text;
	c text := current_setting('regress.c');
	n text := current_setting('regress.size');
BEGIN
	EXECUTE q;
	RETURN 'done';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	msg := SQLSTATE || ': ' || msg || CASE WHEN det <> '' THEN ' / ' || det ELSE '' END;
	msg := regexp_replace(msg, '[0-9a-f]{8}-[0-9a-f-]{27}', '<log id>', 'g');
	msg := regexp_replace(msg, '\mchain ' || c || '\M', 'chain C', 'g');
	msg := regexp_replace(msg, ' of [0-9]+ chains', ' of N chains', 'g');
	RETURN regexp_replace(msg, '\m' || n || '\M', 'SIZE', 'g');
END $$;

-- the log id: one row, made by CREATE EXTENSION
SELECT count(*), bool_and(log_id ~ '^[0-9a-f-]{36}$') FROM sensitive_audit.log_info;

-- the body: origin, total, root over the chain records, one line per chain
SELECT sensitive_audit.checkpoint_body() AS body \gset
SELECT split_part(:'body', E'\n', 1) = 'sensitive_audit/' || (SELECT log_id FROM sensitive_audit.log_info) AS origin,
	   split_part(:'body', E'\n', 2)::bigint = (SELECT count(*) FROM sensitive_audit.log_entries) AS total,
	   right(:'body', 1) = E'\n' AS ends_in_newline,
	   (SELECT count(*) FROM pg_temp.body_chains(:'body'))
		 = (SELECT count(DISTINCT chain) FROM sensitive_audit.log_entries) AS one_line_per_chain;
SELECT bool_and(b.size = (SELECT max(seq) FROM sensitive_audit.log_entries e WHERE e.chain = b.chain)) AS sizes,
	   bool_and(b.root = pg_temp.chain_root(b.chain, b.size)) AS roots
  FROM pg_temp.body_chains(:'body') b;
SELECT pg_temp.b64(split_part(:'body', E'\n', 3))
	   = pg_temp.mth(ARRAY(SELECT pg_temp.leaf(convert_to('sensitive_audit chain', 'SQL_ASCII') || '\x00'::bytea
											  || int4send(b.chain) || int8send(b.size) || b.root)
						  FROM pg_temp.body_chains(:'body') b ORDER BY b.chain)) AS body_root;
-- level-8 nodes were stored for the chain that has them
SELECT count(*) = (SELECT max(seq) / 256 FROM sensitive_audit.log_entries WHERE chain = :c) AS level_8_nodes
  FROM sensitive_audit.tree_nodes WHERE chain = :c AND level = 8;
SELECT bool_and(n.hash = (SELECT pg_temp.mth(array_agg(pg_temp.leaf(e.hash) ORDER BY e.seq))
							FROM sensitive_audit.log_entries e
						   WHERE e.chain = n.chain AND e.seq > n.idx * 256 AND e.seq <= (n.idx + 1) * 256)) AS nodes_right
  FROM sensitive_audit.tree_nodes n WHERE n.level = 8;
-- the same state, the same body; nothing stored twice
SELECT sensitive_audit.checkpoint_body() = :'body' AS same_body,
	   (SELECT count(*) FROM sensitive_audit.tree_nodes) = (SELECT count(DISTINCT (chain, level, idx)) FROM sensitive_audit.tree_nodes) AS no_duplicates;

-- inclusion proofs lead to the root of the tree of that size
SELECT s.seq, t.size,
	   pg_temp.inclusion_root(p) = pg_temp.chain_root(:c, t.size) AS leads_to_root,
	   pg_temp.b64(p->>'root') = pg_temp.chain_root(:c, t.size) AS root,
	   pg_temp.b64(p->>'entry_hash') = (SELECT hash FROM sensitive_audit.log_entries WHERE chain = :c AND seq = s.seq) AS entry,
	   (p->>'leaf_index')::bigint = s.seq - 1 AS leaf_index,
	   jsonb_array_length(p->'path') AS path_length
  FROM (VALUES (1), (2), (255), (256), (257), (300), (512), (513)) s(seq),
	   (VALUES (257), (512), (513), (700)) t(size),
	   LATERAL sensitive_audit.inclusion_proof(:c, s.seq, t.size) p
 WHERE s.seq <= t.size
 ORDER BY 1, 2;
-- the default size is the chain's
SELECT (p->>'tree_size')::bigint = (SELECT max(seq) FROM sensitive_audit.log_entries WHERE chain = :c) AS default_size,
	   pg_temp.inclusion_root(p) = pg_temp.b64(p->>'root') AS leads_to_root,
	   p->>'chain' = :'c' AS chain
  FROM sensitive_audit.inclusion_proof(:c, 7) p;
-- a wrong sibling leads elsewhere
SELECT pg_temp.inclusion_root(jsonb_set(p, '{path,0}', to_jsonb(encode(sha256('x'), 'base64'))))
	   = pg_temp.b64(p->>'root') AS edited_proof_accepted
  FROM sensitive_audit.inclusion_proof(:c, 300, 700) p;

-- consistency proofs between sizes
SELECT o.size AS old_size, n.size AS new_size, pg_temp.consistent(p) AS consistent,
	   pg_temp.b64(p->>'old_root') = pg_temp.chain_root(:c, o.size) AS old_root,
	   pg_temp.b64(p->>'new_root') = pg_temp.chain_root(:c, n.size) AS new_root
  FROM (VALUES (1), (3), (256), (257), (511)) o(size),
	   (VALUES (256), (512), (700)) n(size),
	   LATERAL sensitive_audit.consistency_proof(:c, o.size, n.size) p
 WHERE o.size <= n.size
 ORDER BY 1, 2;
SELECT pg_temp.consistent(jsonb_set(p, '{old_root}', to_jsonb(encode(sha256('x'), 'base64')))) AS other_old_root_accepted
  FROM sensitive_audit.consistency_proof(:c, 100, 700) p;

-- bad input
SELECT pg_temp.try('SELECT sensitive_audit.inclusion_proof(99999, 1)');
SELECT pg_temp.try('SELECT sensitive_audit.inclusion_proof(' || :c || ', 0)');
SELECT pg_temp.try('SELECT sensitive_audit.inclusion_proof(' || :c || ', 100000)');
SELECT pg_temp.try('SELECT sensitive_audit.inclusion_proof(' || :c || ', 10, 9)');
SELECT pg_temp.try('SELECT sensitive_audit.inclusion_proof(' || :c || ', 10, 100000)');
SELECT pg_temp.try('SELECT sensitive_audit.inclusion_proof(NULL, 10)');
SELECT pg_temp.try('SELECT sensitive_audit.consistency_proof(99999, 1)');
SELECT pg_temp.try('SELECT sensitive_audit.consistency_proof(' || :c || ', 0, 10)');
SELECT pg_temp.try('SELECT sensitive_audit.consistency_proof(' || :c || ', 11, 10)');
SELECT pg_temp.try('SELECT sensitive_audit.consistency_proof(' || :c || ', 1, 100000)');
SELECT pg_temp.try('SELECT sensitive_audit.consistency_proof(' || :c || ', NULL)');

-- storing checkpoints
SELECT sensitive_audit.add_checkpoint(pg_temp.signed(:'body')) AS id \gset
SELECT id = :id AS id, log_id = (SELECT log_id FROM sensitive_audit.log_info) AS log_id,
	   total = split_part(:'body', E'\n', 2)::bigint AS total, added_by = session_user AS added_by,
	   note = pg_temp.signed(:'body') AS note_as_given
  FROM sensitive_audit.checkpoints;
-- the same note again: the same id, no second row
SELECT sensitive_audit.add_checkpoint(pg_temp.signed(:'body')) = :id AS same_id,
	   (SELECT count(*) FROM sensitive_audit.checkpoints) AS stored;
-- refused: not a note, no signature, not a checkpoint, another log, a root or size the log does not have
SELECT sensitive_audit.add_checkpoint('hello');
SELECT sensitive_audit.add_checkpoint(:'body');
SELECT sensitive_audit.add_checkpoint(pg_temp.signed(E'example.com/log\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n'));
SELECT pg_temp.try(format('SELECT sensitive_audit.add_checkpoint(%L)',
	pg_temp.signed(replace(:'body', (SELECT log_id FROM sensitive_audit.log_info), 'another-log'))));
-- a body for a state this log never had, made with the format's own rules
CREATE FUNCTION pg_temp.body_for(log_id text, chains int[], sizes bigint[], roots bytea[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'sensitive_audit/' || log_id || E'\n'
		   || (SELECT sum(s) FROM unnest(sizes) s) || E'\n'
		   || encode(pg_temp.mth(ARRAY(SELECT pg_temp.leaf(convert_to('sensitive_audit chain', 'SQL_ASCII') || '\x00'::bytea
																|| int4send(c) || int8send(s) || r)
										  FROM unnest(chains, sizes, roots) u(c, s, r) ORDER BY c)), 'base64') || E'\n'
		   || (SELECT string_agg('chain ' || c || ' ' || s || ' ' || encode(r, 'base64') || E'\n', '' ORDER BY c)
				 FROM unnest(chains, sizes, roots) u(c, s, r)) $$;
-- the SQL rules reproduce the body
SELECT pg_temp.body_for((SELECT log_id FROM sensitive_audit.log_info),
						ARRAY(SELECT chain FROM pg_temp.body_chains(:'body') ORDER BY chain),
						ARRAY(SELECT size FROM pg_temp.body_chains(:'body') ORDER BY chain),
						ARRAY(SELECT root FROM pg_temp.body_chains(:'body') ORDER BY chain)) = :'body' AS reproduced;
SELECT pg_temp.try(format('SELECT sensitive_audit.add_checkpoint(%L)', pg_temp.signed(pg_temp.body_for(
		(SELECT log_id FROM sensitive_audit.log_info), ARRAY[:c], ARRAY[500::bigint], ARRAY[sha256('not the root')])))) AS wrong_root;
SELECT pg_temp.try(format('SELECT sensitive_audit.add_checkpoint(%L)', pg_temp.signed(pg_temp.body_for(
		(SELECT log_id FROM sensitive_audit.log_info), ARRAY[:c], ARRAY[100000::bigint], ARRAY[sha256('x')])))) AS too_long;
-- an older state of the log is a valid checkpoint too
SELECT sensitive_audit.add_checkpoint(pg_temp.signed(pg_temp.body_for((SELECT log_id FROM sensitive_audit.log_info),
		ARRAY[:c], ARRAY[500::bigint], ARRAY[pg_temp.chain_root(:c, 500)]))) = :id + 1 AS older_state_stored;

-- verify() holds every chain to them
SELECT bool_and(ok) AS all_ok, count(*) FILTER (WHERE chain IS NULL) AS bad_checkpoints FROM sensitive_audit.verify();
BEGIN;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER EVENT TRIGGER sensitive_audit_enforce_drop DISABLE;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
DELETE FROM sensitive_audit.log_entries WHERE chain = :c AND seq > 600;
SELECT chain = :c AS chain, entries, ok, first_bad_seq,
	   replace(regexp_replace(problem, 'checkpoint [0-9]+', 'checkpoint N'), :'size', 'SIZE') AS problem
  FROM sensitive_audit.verify() WHERE NOT ok;
SELECT regexp_replace(pg_temp.try('SELECT sensitive_audit.verify_or_raise()'), 'checkpoint [0-9]+', 'checkpoint N');
ROLLBACK;
BEGIN;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER EVENT TRIGGER sensitive_audit_enforce_drop DISABLE;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
DELETE FROM sensitive_audit.log_entries WHERE chain = :c;
SELECT chain = :c AS chain, entries, ok, first_bad_seq,
	   replace(regexp_replace(problem, 'checkpoint [0-9]+', 'checkpoint N'), :'size', 'SIZE') AS problem
  FROM sensitive_audit.verify() WHERE NOT ok;
ROLLBACK;
-- a stored node that does not match its entries
BEGIN;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER TABLE sensitive_audit.tree_nodes DISABLE TRIGGER USER;
UPDATE sensitive_audit.tree_nodes SET hash = sha256('x') WHERE chain = :c AND level = 8 AND idx = 1;
SELECT chain = :c AS chain, ok, first_bad_seq, problem FROM sensitive_audit.verify() WHERE NOT ok;
ROLLBACK;
-- a stored checkpoint that is not one
BEGIN;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER TABLE sensitive_audit.checkpoints DISABLE TRIGGER USER;
UPDATE sensitive_audit.checkpoints SET note = 'garbage' WHERE id = :id;
SELECT chain, entries, ok, first_bad_seq, regexp_replace(problem, 'checkpoint [0-9]+', 'checkpoint N') AS problem
  FROM sensitive_audit.verify() WHERE NOT ok;
SELECT regexp_replace(pg_temp.try('SELECT sensitive_audit.verify_or_raise()'), 'checkpoint [0-9]+', 'checkpoint N');
ROLLBACK;
SELECT bool_and(ok) AS all_ok_again FROM sensitive_audit.verify();

-- the tables are insert-only, the superuser's SQL included
UPDATE sensitive_audit.checkpoints SET total = 0;
DELETE FROM sensitive_audit.tree_nodes;
TRUNCATE sensitive_audit.checkpoints;
INSERT INTO sensitive_audit.tree_nodes VALUES (1, 8, 99, sha256('x'));
UPDATE sensitive_audit.log_info SET log_id = 'x';
DELETE FROM sensitive_audit.log_info;
-- once a checkpoint names the log id, nothing replaces it
SELECT pg_temp.try($$INSERT INTO sensitive_audit.log_info VALUES ('another-log', now())$$);
SELECT count(*) FROM sensitive_audit.log_info;

-- privileges: nothing for PUBLIC; EXECUTE grants them
CREATE ROLE regress_cp_signer;
SET ROLE regress_cp_signer;
SELECT sensitive_audit.checkpoint_body();
RESET ROLE;
GRANT USAGE ON SCHEMA sensitive_audit TO regress_cp_signer;
SET ROLE regress_cp_signer;
SELECT sensitive_audit.checkpoint_body();
SELECT sensitive_audit.add_checkpoint(pg_temp.signed(:'body'));
SELECT sensitive_audit.inclusion_proof(:c, 1);
SELECT sensitive_audit.consistency_proof(:c, 1);
SELECT * FROM sensitive_audit.checkpoints;
RESET ROLE;
GRANT EXECUTE ON FUNCTION sensitive_audit.checkpoint_body(), sensitive_audit.add_checkpoint(text),
	sensitive_audit.inclusion_proof(integer, bigint, bigint) TO regress_cp_signer;
SET ROLE regress_cp_signer;
-- the GRANTs above are entries of the log: the log has grown since :'body'
SELECT sensitive_audit.checkpoint_body() <> :'body' AS body_grew;
SELECT sensitive_audit.add_checkpoint(pg_temp.signed(:'body')) = :id AS same_id;
SELECT pg_temp.inclusion_root(sensitive_audit.inclusion_proof(:c, 1)) IS NOT NULL AS proof;
RESET ROLE;

-- a read-only transaction computes what it would have stored
INSERT INTO cp_t SELECT g, 'w' || g FROM generate_series(701, 1100) g;
SELECT count(*) AS nodes_before FROM sensitive_audit.tree_nodes \gset
BEGIN READ ONLY;
SELECT bool_and(b.root = pg_temp.chain_root(b.chain, b.size)) AS read_only_roots,
	   bool_and(b.size = (SELECT max(seq) FROM sensitive_audit.log_entries e WHERE e.chain = b.chain)) AS sizes
  FROM pg_temp.body_chains(sensitive_audit.checkpoint_body()) b;
SELECT pg_temp.inclusion_root(p) = pg_temp.b64(p->>'root') AS read_only_proof
  FROM sensitive_audit.inclusion_proof((SELECT l.chain FROM sensitive_audit.log l WHERE l.new_value = 'w1000'), 1) p;
COMMIT;
SELECT count(*) = :nodes_before AS nothing_stored FROM sensitive_audit.tree_nodes;
SELECT sensitive_audit.checkpoint_body() IS NOT NULL AS body;
SELECT count(*) > :nodes_before AS stored_later FROM sensitive_audit.tree_nodes;

DROP OWNED BY regress_cp_signer;
DROP ROLE regress_cp_signer;
SELECT sensitive_audit.untag('cp_t', 'v');
DROP TABLE cp_t;
