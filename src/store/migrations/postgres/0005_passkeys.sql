-- Passkeys (WebAuthn credentials) registered by accounts, for the step-up that a vote may
-- ask of each ballot. The public key and counter only: nothing here lets anyone sign.
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY NOT NULL,
    actor TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    passkey TEXT NOT NULL
);
CREATE INDEX passkeys_actor ON passkeys (actor);
