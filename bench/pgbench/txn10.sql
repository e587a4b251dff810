-- Ten single-row UPDATEs of a tagged column in one transaction.  Each id is drawn from its
-- own tenth of the table, in ascending order, so concurrent transactions lock rows in the
-- same order and never deadlock.
\set id1 random(0 * :rows / 10 + 1, 1 * :rows / 10)
\set id2 random(1 * :rows / 10 + 1, 2 * :rows / 10)
\set id3 random(2 * :rows / 10 + 1, 3 * :rows / 10)
\set id4 random(3 * :rows / 10 + 1, 4 * :rows / 10)
\set id5 random(4 * :rows / 10 + 1, 5 * :rows / 10)
\set id6 random(5 * :rows / 10 + 1, 6 * :rows / 10)
\set id7 random(6 * :rows / 10 + 1, 7 * :rows / 10)
\set id8 random(7 * :rows / 10 + 1, 8 * :rows / 10)
\set id9 random(8 * :rows / 10 + 1, 9 * :rows / 10)
\set id10 random(9 * :rows / 10 + 1, 10 * :rows / 10)
BEGIN;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id1;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id2;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id3;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id4;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id5;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id6;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id7;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id8;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id9;
UPDATE @T@ SET balance = balance + 1 WHERE id = :id10;
END;
