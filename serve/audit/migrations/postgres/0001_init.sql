-- Deliveries are stored before they are acknowledged: the durable queue,
-- shared by every replica. delivery_id is the idempotency key.
CREATE TABLE deliveries (
	seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	delivery_id  text        NOT NULL UNIQUE,
	event        text        NOT NULL,
	payload      bytea       NOT NULL,
	received_at  timestamptz NOT NULL,
	state        text        NOT NULL DEFAULT 'queued', -- queued | working | done | error
	attempts     integer     NOT NULL DEFAULT 0,        -- raised by every claim: fences a late finish
	last_error   text        NOT NULL DEFAULT '',
	processed_at timestamptz,
	lease_until  timestamptz,                           -- a working delivery past its lease is claimable again
	claimed_by   text        NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state IN ('queued', 'working');
CREATE INDEX deliveries_received ON deliveries (received_at);

-- Every decision, with the input it was made on.
CREATE TABLE decisions (
	seq                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id                 text        NOT NULL UNIQUE,
	time               timestamptz NOT NULL,
	day                date        NOT NULL, -- UTC date, for the daily deployment count
	delivery_id        text        NOT NULL DEFAULT '',
	repo               text        NOT NULL DEFAULT '',
	policy             text        NOT NULL,
	decision           text        NOT NULL, -- allow | deny | error
	violations         jsonb       NOT NULL,
	actor              text        NOT NULL DEFAULT '',
	source             text        NOT NULL, -- webhook | api
	event              text        NOT NULL DEFAULT '',
	environment        text        NOT NULL DEFAULT '',
	ref                text        NOT NULL DEFAULT '',
	sha                text        NOT NULL DEFAULT '',
	input              json        NOT NULL, -- json, not jsonb: the document exactly as decided
	input_hash         text        NOT NULL,
	policy_hash        text        NOT NULL,
	detail             jsonb       NOT NULL DEFAULT '{}',
	shadow_decision    text        NOT NULL DEFAULT '',
	shadow_violations  jsonb       NOT NULL DEFAULT '[]',
	shadow_policy_hash text        NOT NULL DEFAULT '',
	disagree           boolean     NOT NULL DEFAULT false
);
CREATE INDEX decisions_time ON decisions (time);
CREATE INDEX decisions_policy ON decisions (policy, seq);
CREATE INDEX decisions_decision ON decisions (decision, seq);
CREATE INDEX decisions_delivery ON decisions (delivery_id) WHERE delivery_id <> '';
CREATE INDEX decisions_deploys ON decisions (repo, environment, day, policy, decision);
CREATE INDEX decisions_disagree ON decisions (seq) WHERE disagree;
