-- A claimed delivery is leased: a worker that stops renewing its lease
-- (its process died) loses the delivery to another worker. attempts, raised
-- by every claim, fences a late finish by the worker that lost it.
ALTER TABLE deliveries ADD COLUMN lease_until TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state IN ('queued', 'working');
CREATE INDEX decisions_delivery ON decisions (delivery_id) WHERE delivery_id <> '';
