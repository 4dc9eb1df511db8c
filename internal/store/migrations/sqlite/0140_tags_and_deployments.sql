-- Issue 14: moved and deleted tags, and lanes mirrored to GitHub Deployments.
--
-- releasepilot: foreign_keys off
-- releasepilot: keep indexes of releases
-- A tag moved under on_tag_move: restart starts a new release of the same tag
-- at the new commit; the old one stays, superseded_by the new one. Only the
-- current release of an app and tag is unique, so UNIQUE (app, tag) becomes a
-- partial unique index. SQLite cannot drop a table constraint, so the table is
-- rebuilt as SQLite documents it: with foreign keys off (the line above tells
-- the migrator), create, copy, drop, rename; the migrator re-creates the
-- indexes the table had (later migrations add some, and a database may have
-- applied those first) and runs foreign_key_check before it commits.
CREATE TABLE releases_new (
    id            TEXT PRIMARY KEY,
    app           TEXT NOT NULL REFERENCES apps(name),
    tag           TEXT NOT NULL,
    version       TEXT NOT NULL,
    commit_sha    TEXT NOT NULL,
    state         TEXT NOT NULL,
    notes         TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- The release that replaced this one when its tag moved ('' while current).
    superseded_by TEXT NOT NULL DEFAULT '',
    -- What deliveries said of the tag since: '' (where the release is),
    -- 'moved' (to tag_commit) or 'deleted'.
    tag_state     TEXT NOT NULL DEFAULT '',
    tag_commit    TEXT NOT NULL DEFAULT ''
);
INSERT INTO releases_new (id, app, tag, version, commit_sha, state, notes, created_at, updated_at)
    SELECT id, app, tag, version, commit_sha, state, notes, created_at, updated_at FROM releases;
DROP TABLE releases;
ALTER TABLE releases_new RENAME TO releases;
CREATE INDEX releases_app_created ON releases (app, created_at);
CREATE UNIQUE INDEX releases_current_tag ON releases (app, tag) WHERE superseded_by = '';

-- A lane withdrawn before its point of no return (its tag moved or was
-- deleted): its jobs may not record anything more, so none of them can go on
-- to upload or release after the withdrawal committed.
ALTER TABLE lanes ADD COLUMN withdrawn_at INTEGER NOT NULL DEFAULT 0;

-- The GitHub Deployment that shows each lane's progress, and the last audit
-- event mirrored to it as a deployment status.
CREATE TABLE github_deployments (
    lane_id       TEXT PRIMARY KEY,
    repository    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    sha           TEXT NOT NULL,
    deployment_id INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT '',
    event_id      INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX github_deployments_environment ON github_deployments (repository, environment);

-- Short leases on work that one replica at a time may do (the deployment
-- pass): a holder keeps its lease by renewing it before expires_at.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
