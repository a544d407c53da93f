-- The audit trail (log-ins, refusals, logouts, clerk entries), hash-chained like a sitting's
-- log, apart from every sitting's chain. Never holds a password, token or ticket.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY NOT NULL,
    at_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
