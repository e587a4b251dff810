-- One DELETE of one row per transaction: the delete sequence walks behind the insert
-- sequence, so each transaction removes a row an INSERT run (or a top-up) made.  The
-- uncorrelated subquery is evaluated once, so this is a primary-key lookup.
DELETE FROM @T@ WHERE id = (SELECT nextval('@T@_del'));
