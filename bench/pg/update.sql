-- pgbench's transaction for bench/pgbench.sh: one one-row UPDATE (of 1,000 rows, chosen at random
-- so that concurrent clients rarely wait on one another's row, as refresh chains never do).
\set id random(1, 1000)
UPDATE pgb SET n = n + 1 WHERE id = :id;
