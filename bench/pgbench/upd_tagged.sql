-- One single-row UPDATE of a tagged column (balance) per transaction.
\set id random(1, :rows)
UPDATE @T@ SET balance = balance + 1 WHERE id = :id;
