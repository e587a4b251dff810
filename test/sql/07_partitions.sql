-- Tagging a partitioned table covers every partition, present and future,
-- and rows moved between partitions.
-- this file counts entries: reads of the log, which add to it, are 16_reads' subject
SET sensitive_audit.log_reads = off;
CREATE TABLE visits (id int, region text, diagnosis text, PRIMARY KEY (id, region))
	PARTITION BY LIST (region);
CREATE TABLE visits_eu PARTITION OF visits FOR VALUES IN ('eu');
SELECT sensitive_audit.tag('visits', 'diagnosis');
CREATE TABLE visits_us PARTITION OF visits FOR VALUES IN ('us');
CREATE TABLE visits_asia (id int, region text, diagnosis text, PRIMARY KEY (id, region));
ALTER TABLE visits ATTACH PARTITION visits_asia FOR VALUES IN ('asia');

SELECT tgrelid::regclass AS tbl, tgname, tgenabled, tgattr FROM pg_trigger
 WHERE tgname LIKE 'sensitive_audit%' AND tgrelid::regclass::text LIKE 'visits%' ORDER BY 1, 2;
SELECT table_name, column_name, partitioned FROM sensitive_audit.tagged_columns WHERE table_name LIKE 'visits%';

INSERT INTO visits VALUES (1, 'eu', 'flu'), (2, 'us', 'cold'), (3, 'asia', 'ok');
UPDATE visits SET region = 'us' WHERE id = 1;	-- moves a row between partitions
UPDATE visits SET diagnosis = 'better' WHERE id = 2;
TRUNCATE visits_asia;
TRUNCATE visits;
SELECT operation, table_name, column_name, row_key, old_value, new_value
  FROM sensitive_audit.log WHERE table_name LIKE 'visits%' AND operation <> 'TAG'
 ORDER BY txid, seq;

-- a partition cannot be tagged on its own
SELECT sensitive_audit.tag('visits_eu', 'diagnosis');

SELECT sensitive_audit.untag('visits', 'diagnosis');
SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sensitive_audit%' AND tgrelid::regclass::text LIKE 'visits%';

SELECT bool_and(ok) AS all_ok FROM sensitive_audit.verify();
