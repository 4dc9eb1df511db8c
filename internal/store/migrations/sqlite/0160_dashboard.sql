-- Dashboard sign-in sessions. Only the SHA-256 of the cookie's secret is
-- kept, so a copy of the table signs nobody in; every replica reads the same
-- rows, so a session works (and ends) everywhere at once.
CREATE TABLE dashboard_sessions (
    id_hash     TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);

-- The releases page lists newest first, filtered by app and/or state, and
-- pages by (created_at, id).
CREATE INDEX releases_created_id ON releases (created_at, id);
CREATE INDEX releases_state_created ON releases (state, created_at, id);
