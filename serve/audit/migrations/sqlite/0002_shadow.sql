-- Shadow mode: a candidate policy set decides every delivery too; only
-- the live decision is enforced.
ALTER TABLE decisions ADD COLUMN shadow_decision TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN shadow_violations TEXT NOT NULL DEFAULT '[]';
ALTER TABLE decisions ADD COLUMN shadow_policy_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN disagree INTEGER NOT NULL DEFAULT 0;
CREATE INDEX decisions_disagree ON decisions (disagree, seq);
