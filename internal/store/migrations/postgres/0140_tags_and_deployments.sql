-- Issue 14: moved and deleted tags, and lanes mirrored to GitHub Deployments.
--
-- A tag moved under on_tag_move: restart starts a new release of the same tag
-- at the new commit; the old one stays, superseded_by the new one. Only the
-- current release of an app and tag is unique.
ALTER TABLE releases DROP CONSTRAINT releases_app_tag_key;
ALTER TABLE releases ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
-- What deliveries said of the tag since: '' (where the release is), 'moved'
-- (to tag_commit) or 'deleted'.
ALTER TABLE releases ADD COLUMN tag_state TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN tag_commit TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX releases_current_tag ON releases (app, tag) WHERE superseded_by = '';

-- A lane withdrawn before its point of no return (its tag moved or was
-- deleted): its jobs may not record anything more, so none of them can go on
-- to upload or release after the withdrawal committed.
ALTER TABLE lanes ADD COLUMN withdrawn_at BIGINT NOT NULL DEFAULT 0;

-- The GitHub Deployment that shows each lane's progress, and the last audit
-- event mirrored to it as a deployment status.
CREATE TABLE github_deployments (
    lane_id       TEXT PRIMARY KEY,
    repository    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    sha           TEXT NOT NULL,
    deployment_id BIGINT NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT '',
    event_id      BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX github_deployments_environment ON github_deployments (repository, environment);

-- Short leases on work that one replica at a time may do (the deployment
-- pass): a holder keeps its lease by renewing it before expires_at.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
