-- Only the decisions a shadow policy set disagreed with are ever looked up
-- by disagree: a partial index holds those alone, and a decision that
-- agrees (almost all) no longer writes an index page when it is recorded.
DROP INDEX decisions_disagree;
CREATE INDEX decisions_disagree ON decisions (seq) WHERE disagree;
