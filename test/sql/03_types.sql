-- Values are recorded as canonical text that does not depend on the
-- writer's session settings.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TYPE reading AS (at timestamptz, val float8, raw bytea);
CREATE TABLE typed (
	id int PRIMARY KEY,
	t text, n numeric, f4 float4, f8 float8, b bytea, j jsonb, arr int[],
	ts timestamptz, tsn timestamp, d date, tm time, iv interval, u uuid,
	m mood, dom posint, comp reading, tarr timestamptz[], rng tstzrange, big text
);
SELECT sensitive_audit.tag('typed', 't', 'n', 'f4', 'f8', 'b', 'j', 'arr', 'ts', 'tsn', 'd', 'tm',
						   'iv', 'u', 'm', 'dom', 'comp', 'tarr', 'rng', 'big');

-- a session with every output-affecting setting changed
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = -3;
SET bytea_output = 'escape';

INSERT INTO typed VALUES (
	1, 'plain', 'NaN', '-0', 'Infinity', '\x00ff10', '{"b": 1, "a": [1, 2.50]}', '{1,NULL,3}',
	'2024-01-02 03:04:05.123456+00', '2024-01-02 03:04:05', '2024-02-29', '13:14:15.5',
	'1 year 2 months 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	'happy', 5, ROW('2024-01-02 03:04:05+00', 0.1, '\x01'),
	ARRAY['infinity'::timestamptz, '-infinity', '2000-01-01 00:00:00+00', NULL],
	'[2024-01-01 00:00:00+00,2024-01-02 00:00:00+00)', NULL);

SELECT column_name, value_type, new_value FROM sensitive_audit.log
 WHERE table_name = 'typed' AND operation = 'INSERT' ORDER BY seq;

-- NULL <-> value transitions, float edge cases, numeric scale
UPDATE typed SET t = NULL, n = 1.50, f4 = 'NaN', f8 = 0.1, ts = '-infinity', big = NULL WHERE id = 1;
UPDATE typed SET t = 'back', f8 = '-Infinity', f4 = 3.4028235e38 WHERE id = 1;
SELECT column_name, old_value, new_value FROM sensitive_audit.log
 WHERE table_name = 'typed' AND operation = 'UPDATE' ORDER BY seq;

-- the same change made under default settings reads the same
RESET ALL;
INSERT INTO typed (id, f8, ts, b, iv, d) VALUES (2, 0.1, '2024-01-02 03:04:05.123456+00', '\x00ff10',
	'1 year 2 months 3 days 04:05:06.5', '2024-02-29');
SELECT column_name, new_value FROM sensitive_audit.log
 WHERE table_name = 'typed' AND operation = 'INSERT' AND row_key = '{"id": "2"}'
   AND column_name IN ('f8', 'ts', 'b', 'iv', 'd')
 ORDER BY 1;

-- a 1 MB value is stored (TOASTed) and verifies
UPDATE typed SET big = repeat('0123456789abcdef', 65536) WHERE id = 1;
SELECT length(new_value), md5(new_value) = md5(repeat('0123456789abcdef', 65536)) AS same
  FROM sensitive_audit.log WHERE table_name = 'typed' AND column_name = 'big' AND operation = 'UPDATE';
UPDATE typed SET big = big || 'x' WHERE id = 1;
SELECT length(old_value), length(new_value) FROM sensitive_audit.log
 WHERE table_name = 'typed' AND column_name = 'big' AND operation = 'UPDATE' ORDER BY seq;

-- an UPDATE that rewrites a TOASTed value with itself is not a change
UPDATE typed SET big = big, t = t WHERE id = 1;
SELECT count(*) FROM sensitive_audit.log WHERE table_name = 'typed' AND column_name = 'big';

-- geometric types print floats: the same value reads the same under any extra_float_digits
CREATE TABLE shapes (id int PRIMARY KEY, p point, bx box, c circle);
SELECT sensitive_audit.tag('shapes', 'p', 'bx', 'c');
SET extra_float_digits = -3;
INSERT INTO shapes VALUES (1, '(0.1,2.0123456789012345)', '((0.1,0.2),(1.1234567890123457,2))', '<(0.1,0.2),0.33333333333333331>');
RESET extra_float_digits;
INSERT INTO shapes VALUES (2, '(0.1,2.0123456789012345)', '((0.1,0.2),(1.1234567890123457,2))', '<(0.1,0.2),0.33333333333333331>');
SELECT column_name, count(DISTINCT new_value) AS distinct_texts, min(new_value) AS text
  FROM sensitive_audit.log WHERE table_name = 'shapes' AND operation = 'INSERT'
 GROUP BY column_name ORDER BY 1;

-- types whose text depends on search_path or lc_monetary cannot be tagged, however nested
CREATE TABLE unpinnable (id int PRIMARY KEY, rc regclass, rt regtype[], mr int4multirange,
						 cash_ranges int4range);
SELECT sensitive_audit.tag('unpinnable', 'rc');
SELECT sensitive_audit.tag('unpinnable', 'rt');
CREATE TYPE cashrange AS RANGE (subtype = money);
ALTER TABLE unpinnable ADD COLUMN cm cashmultirange;
SELECT sensitive_audit.tag('unpinnable', 'cm');
SELECT sensitive_audit.tag('unpinnable', 'mr');
DROP TABLE unpinnable;
DROP TYPE cashrange;

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
