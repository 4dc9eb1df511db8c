-- The native fingerprint of a commit per platform, with the inputs it was
-- computed from, so a later commit's fingerprint can be explained against it.
CREATE TABLE fingerprints (
    app        TEXT NOT NULL REFERENCES apps(name),
    platform   TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app, platform, commit_sha, algorithm)
);
