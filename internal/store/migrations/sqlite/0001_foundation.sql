-- Times are integer milliseconds since the Unix epoch (UTC) on both engines,
-- so comparisons and ordering behave the same everywhere.
CREATE TABLE apps (
    name        TEXT PRIMARY KEY,
    repository  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE releases (
    id          TEXT PRIMARY KEY,
    app         TEXT NOT NULL REFERENCES apps(name),
    tag         TEXT NOT NULL,
    version     TEXT NOT NULL,
    commit_sha  TEXT NOT NULL,
    state       TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (app, tag)
);
CREATE INDEX releases_app_created ON releases (app, created_at);

CREATE TABLE lanes (
    id          TEXT PRIMARY KEY,
    release_id  TEXT NOT NULL REFERENCES releases(id),
    platform    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    plan        TEXT NOT NULL DEFAULT '{}',
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (release_id, platform)
);

CREATE TABLE rollouts (
    lane_id          TEXT PRIMARY KEY REFERENCES lanes(id),
    state            TEXT NOT NULL,
    step_index       INTEGER NOT NULL DEFAULT 0,
    percent          INTEGER NOT NULL DEFAULT 0,
    reason           TEXT NOT NULL DEFAULT '',
    step_started_at  INTEGER NOT NULL DEFAULT 0,
    next_eligible_at INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 1,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX rollouts_due ON rollouts (state, next_eligible_at);

CREATE TABLE binaries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    app          TEXT NOT NULL REFERENCES apps(name),
    platform     TEXT NOT NULL,
    version      TEXT NOT NULL,
    build_number TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    release_id   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (app, platform, build_number)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    release_id  TEXT NOT NULL DEFAULT '',
    lane_id     TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_release ON events (release_id, id);

CREATE TABLE webhook_deliveries (
    source      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event       TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    outcome     TEXT NOT NULL DEFAULT '',
    release_id  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (source, delivery_id)
);
