-- One INSERT of a new row, with the three tagged columns set, per transaction.  Ids come
-- from the table's insert sequence (1000001 up); DELETE runs remove these rows again.
\set v random(100000000, 999999999)
INSERT INTO @T@ (id, name, ssn, balance, note, counter)
	VALUES (nextval('@T@_ins'), 'name ' || :v, :v, :v / 100.0, 'note', 0);
