-- CodePush metadata (the codepush.Store of the OTA server). Package contents
-- live in codepush.Blobs; counters are per deployment key and label.
CREATE TABLE codepush_apps (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE codepush_deployments (
    key        TEXT PRIMARY KEY,
    app        TEXT NOT NULL REFERENCES codepush_apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    position   BIGINT NOT NULL,
    UNIQUE (app, name)
);

-- A deployment's append-only history; id orders it oldest first.
CREATE TABLE codepush_releases (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_key      TEXT NOT NULL,
    label               TEXT NOT NULL,
    app_version         TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    mandatory           BOOLEAN NOT NULL DEFAULT FALSE,
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    rollout             BIGINT NOT NULL DEFAULT 100,
    package_hash        TEXT NOT NULL DEFAULT '',
    size                BIGINT NOT NULL DEFAULT 0,
    blob_key            TEXT NOT NULL DEFAULT '',
    blob_url            TEXT NOT NULL DEFAULT '',
    method              TEXT NOT NULL DEFAULT '',
    original_label      TEXT NOT NULL DEFAULT '',
    original_deployment TEXT NOT NULL DEFAULT '',
    released_by         TEXT NOT NULL DEFAULT '',
    commit_sha          TEXT NOT NULL DEFAULT '',
    upload_time         BIGINT NOT NULL DEFAULT 0,
    UNIQUE (deployment_key, label)
);

CREATE TABLE codepush_counts (
    deployment_key TEXT NOT NULL,
    label          TEXT NOT NULL,
    active         BIGINT NOT NULL DEFAULT 0,
    downloaded     BIGINT NOT NULL DEFAULT 0,
    installed      BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (deployment_key, label)
);

-- Every change to apps, deployments or histories appends the deployment key
-- it touched, in the same transaction; replicas poll it to refresh their
-- in-memory views. Writers serialise on an advisory lock so that seq order is
-- commit order and a poller never skips a late-committing lower seq.
CREATE TABLE codepush_changes (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_key TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX codepush_changes_at ON codepush_changes (at);
