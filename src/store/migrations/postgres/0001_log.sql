-- The sittings and their hash-chained event logs.
CREATE TABLE sittings (
    sitting TEXT PRIMARY KEY NOT NULL,
    epoch TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE events (
    sitting TEXT NOT NULL REFERENCES sittings(sitting),
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    command_id TEXT,
    body TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (sitting, seq)
);

CREATE INDEX events_command ON events (sitting, actor, command_id) WHERE command_id IS NOT NULL;

-- Secret choices: no actor, no time, no sequence; the random token is the key.
CREATE TABLE ballot_box (
    sitting TEXT NOT NULL REFERENCES sittings(sitting),
    token BYTEA NOT NULL,
    vote BIGINT NOT NULL,
    choice TEXT NOT NULL,
    PRIMARY KEY (sitting, token)
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);
