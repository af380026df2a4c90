-- Deliveries are stored before they are acknowledged: the durable queue.
CREATE TABLE deliveries (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	delivery_id  TEXT    NOT NULL UNIQUE,
	event        TEXT    NOT NULL,
	payload      BLOB    NOT NULL,
	received_at  TEXT    NOT NULL,
	state        TEXT    NOT NULL DEFAULT 'queued', -- queued | done | error
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	processed_at TEXT
);
CREATE INDEX deliveries_state ON deliveries (state, seq);

-- Every decision, with the input it was made on.
CREATE TABLE decisions (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT    NOT NULL UNIQUE,
	time         TEXT    NOT NULL,
	day          TEXT    NOT NULL, -- UTC date, for the daily deployment count
	delivery_id  TEXT    NOT NULL DEFAULT '',
	repo         TEXT    NOT NULL DEFAULT '',
	policy       TEXT    NOT NULL,
	decision     TEXT    NOT NULL, -- allow | deny | error
	violations   TEXT    NOT NULL, -- JSON
	actor        TEXT    NOT NULL DEFAULT '',
	source       TEXT    NOT NULL, -- webhook | api
	event        TEXT    NOT NULL DEFAULT '',
	environment  TEXT    NOT NULL DEFAULT '',
	ref          TEXT    NOT NULL DEFAULT '',
	sha          TEXT    NOT NULL DEFAULT '',
	input        TEXT    NOT NULL, -- JSON
	input_hash   TEXT    NOT NULL,
	policy_hash  TEXT    NOT NULL,
	detail       TEXT    NOT NULL DEFAULT '{}' -- JSON: callback, check run, config source, errors
);
CREATE INDEX decisions_time ON decisions (time);
CREATE INDEX decisions_policy ON decisions (policy, seq);
CREATE INDEX decisions_decision ON decisions (decision, seq);
CREATE INDEX decisions_deploys ON decisions (repo, environment, day, policy, decision);
