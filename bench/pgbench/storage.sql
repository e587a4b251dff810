-- Storage measurement: one single-row UPDATE of one tagged column (ssn) to a short new value.
\set id random(1, :rows)
\set v random(100000000, 999999999)
UPDATE @T@ SET ssn = :v WHERE id = :id;
