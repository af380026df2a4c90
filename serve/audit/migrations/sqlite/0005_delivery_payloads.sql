-- A delivery's payload (often tens of kilobytes) in a table of its own,
-- written once. SQLite rewrites a whole row on every update, and the
-- claim, the lease renewals and the finish each rewrote the payload's
-- overflow pages with it: most of what a delivery wrote to the WAL.
CREATE TABLE delivery_payloads (
	seq     INTEGER PRIMARY KEY REFERENCES deliveries (seq) ON DELETE CASCADE,
	payload BLOB    NOT NULL
);
INSERT INTO delivery_payloads (seq, payload) SELECT seq, payload FROM deliveries;
ALTER TABLE deliveries DROP COLUMN payload;
