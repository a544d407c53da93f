-- Signed checkpoints of the chain head (the signature is checked by whoever reads them;
-- the signing key is never in the database).
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sitting TEXT NOT NULL REFERENCES sittings(sitting),
    seq INTEGER NOT NULL,
    body TEXT NOT NULL
);

CREATE INDEX checkpoints_sitting ON checkpoints (sitting, seq);
