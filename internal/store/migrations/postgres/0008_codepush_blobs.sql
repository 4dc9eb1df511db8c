-- OTA package contents, content-addressed by SHA-256, so every replica can
-- serve every package without a shared file system (codepush.storage).
CREATE TABLE codepush_blobs (
    key        TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
