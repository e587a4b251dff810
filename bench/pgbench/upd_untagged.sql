-- One single-row UPDATE of an untagged column (counter) per transaction.
\set id random(1, :rows)
UPDATE @T@ SET counter = counter + 1 WHERE id = :id;
