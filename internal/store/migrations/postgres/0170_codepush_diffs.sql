-- CodePush diff packages: from the package a device runs (its package hash)
-- to the content of a release (its blob). Diffs depend only on the two
-- contents, so promoted and rolled-back copies of a release share them.
CREATE TABLE codepush_diffs (
    from_hash  TEXT NOT NULL,
    to_blob    TEXT NOT NULL,
    blob_key   TEXT NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (to_blob, from_hash)
);
