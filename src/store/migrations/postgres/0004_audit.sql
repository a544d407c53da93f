-- The audit trail (log-ins, refusals, logouts, clerk entries), hash-chained like a sitting's
-- log, apart from every sitting's chain. Never holds a password, token or ticket.
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY NOT NULL,
    at_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
