-- Webhooks: how far each endpoint has been told of each sitting (every event up to
-- delivered_seq was answered 2xx or is not for it), ranges an operator asked to deliver
-- again, and every attempt made, for the delivery log.
CREATE TABLE webhook_cursors (
    endpoint TEXT NOT NULL,
    sitting TEXT NOT NULL,
    delivered_seq BIGINT NOT NULL,
    PRIMARY KEY (endpoint, sitting)
);
CREATE TABLE webhook_replays (
    id BIGSERIAL PRIMARY KEY,
    endpoint TEXT NOT NULL,
    sitting TEXT NOT NULL,
    next_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    asked_by TEXT NOT NULL,
    asked_at_ms BIGINT NOT NULL
);
CREATE TABLE webhook_attempts (
    id BIGSERIAL PRIMARY KEY,
    endpoint TEXT NOT NULL,
    sitting TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    replay BOOLEAN NOT NULL,
    attempt BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    status BIGINT,
    error TEXT,
    millis BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint, id);
