-- OTA package contents, content-addressed by SHA-256, so every replica can
-- serve every package without a shared file system (codepush.storage).
CREATE TABLE codepush_blobs (
    key        TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    data       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
