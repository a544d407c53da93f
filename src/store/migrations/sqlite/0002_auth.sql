-- Password hashes (argon2id PHC strings) and revoked tokens.
CREATE TABLE credentials (
    actor TEXT PRIMARY KEY NOT NULL,
    phc TEXT NOT NULL
);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    exp_ms INTEGER NOT NULL
);
