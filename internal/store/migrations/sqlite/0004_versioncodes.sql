-- Every versionCode ever sent to Google Play, per package: recorded before
-- the bytes leave, so no replica ever sends one Play may have seen again.
CREATE TABLE play_version_codes (
    package      TEXT NOT NULL,
    version_code INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (package, version_code)
);
