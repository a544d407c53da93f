-- Webhooks: how far each endpoint has been told of each sitting (every event up to
-- delivered_seq was answered 2xx or is not for it), ranges an operator asked to deliver
-- again, and every attempt made, for the delivery log.
CREATE TABLE webhook_cursors (
    endpoint TEXT NOT NULL,
    sitting TEXT NOT NULL,
    delivered_seq INTEGER NOT NULL,
    PRIMARY KEY (endpoint, sitting)
);
CREATE TABLE webhook_replays (
    id INTEGER PRIMARY KEY NOT NULL,
    endpoint TEXT NOT NULL,
    sitting TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    asked_by TEXT NOT NULL,
    asked_at_ms INTEGER NOT NULL
);
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY NOT NULL,
    endpoint TEXT NOT NULL,
    sitting TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    replay INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    millis INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint, id);
