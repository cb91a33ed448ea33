-- Webhook subscriptions, the events syncs raise, and one delivery per event and matching
-- subscription. Events and deliveries are written in the transaction that ends their sync
-- (a transactional outbox); each delivery attempt is an apalis job of the webhook queue.

CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    url text NOT NULL,
    -- The signing secret (`whsec_...`), sealed under CREDENTIALS_KEY with the id as context.
    sealed_secret text NOT NULL,
    -- The catalogs whose events it receives; NULL: every catalog.
    catalogs uuid[],
    events text[] NOT NULL,
    breaking_only boolean NOT NULL DEFAULT false,
    description text,
    -- Set when deliveries stop: by hand, after a 410 Gone, or after too many failures.
    disabled_at timestamptz,
    disabled_reason text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
    -- The `webhook-id` receivers deduplicate on.
    id uuid PRIMARY KEY,
    type text NOT NULL,
    catalog_id uuid,
    sync_id uuid,
    -- The body every subscription receives, but for its sequence number and, for
    -- `breaking_only` subscriptions, its non-breaking changes.
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    -- Increasing per subscription and catalog, so that a receiver can order events.
    sequence bigint NOT NULL,
    breaking_only boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_status_code smallint,
    last_latency_ms integer,
    last_error text,
    next_attempt_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- The last sequence number given per subscription and catalog (the nil UUID for events of
-- no catalog, such as pings).
CREATE TABLE webhook_sequences (
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    catalog_id uuid NOT NULL,
    last bigint NOT NULL,
    PRIMARY KEY (webhook_id, catalog_id)
);
