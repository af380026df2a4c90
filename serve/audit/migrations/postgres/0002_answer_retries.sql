-- A delivery whose answer GitHub did not take waits (state 'waiting')
-- until lease_until, then is claimed again and answered with the decision
-- it recorded. answer_tries counts those tries, apart from the claims
-- whose worker died (attempts counts both).
ALTER TABLE deliveries ADD COLUMN answer_tries integer NOT NULL DEFAULT 0;
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state IN ('queued', 'working', 'waiting');

-- Where a delivery came from: the webhook, or the reconciler, which
-- fetched it from GitHub's list of the App's deliveries after GitHub
-- could not hand it over.
ALTER TABLE deliveries ADD COLUMN origin text NOT NULL DEFAULT 'webhook';

-- Leases on work one replica at a time does (the reconciler).
CREATE TABLE leases (
	name  text        PRIMARY KEY,
	owner text        NOT NULL,
	until timestamptz NOT NULL
);
