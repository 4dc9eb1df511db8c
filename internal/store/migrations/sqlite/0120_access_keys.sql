-- Access keys: releasepilot credentials with a role, for the CodePush CLI
-- (code-push login --accessKey), the API and the dashboard. Only the
-- SHA-256 of the secret is kept; the secret is shown once, at creation.
CREATE TABLE access_keys (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL DEFAULT 0
);
