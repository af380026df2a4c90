-- A delivery whose answer GitHub did not take waits (state 'waiting')
-- until lease_until, then is claimed again and answered with the decision
-- it recorded. answer_tries counts those tries, apart from the claims
-- whose worker died (attempts counts both).
ALTER TABLE deliveries ADD COLUMN answer_tries INTEGER NOT NULL DEFAULT 0;
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state IN ('queued', 'working', 'waiting');
