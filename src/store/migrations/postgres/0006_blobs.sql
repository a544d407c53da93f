-- Uploaded files: one row per distinct content (its SHA-256), with what the server found
-- it to be. The bytes live in the blob store; a document version names its blob by hash.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
