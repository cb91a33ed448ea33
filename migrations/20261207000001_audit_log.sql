-- Every mutating API request: who (the token's name), what (the operation), on what (the
-- target), and how it ended (the HTTP status). Entries are only ever appended, and pruned
-- once older than the audit retention.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    token text,
    action text NOT NULL,
    method text NOT NULL,
    target text NOT NULL,
    request_id text NOT NULL,
    status smallint NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
