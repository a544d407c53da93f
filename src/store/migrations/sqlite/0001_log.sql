-- The sittings and their hash-chained event logs.
CREATE TABLE sittings (
    sitting TEXT PRIMARY KEY NOT NULL,
    epoch TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE events (
    sitting TEXT NOT NULL REFERENCES sittings(sitting),
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    command_id TEXT,
    body TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (sitting, seq)
) WITHOUT ROWID;

CREATE INDEX events_command ON events (sitting, actor, command_id) WHERE command_id IS NOT NULL;

-- Secret choices: no actor, no time, no sequence; the random token orders the rows.
CREATE TABLE ballot_box (
    sitting TEXT NOT NULL REFERENCES sittings(sitting),
    token BLOB NOT NULL,
    vote INTEGER NOT NULL,
    choice TEXT NOT NULL,
    PRIMARY KEY (sitting, token)
) WITHOUT ROWID;

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
