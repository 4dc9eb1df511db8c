-- Verdicts on npm package versions (does name@version ship native code, per
-- platform), shared by every replica so that a restart or a second replica
-- does not download and judge the tarball again. The key names the judgement
-- rules, the registry and the package version. The store bounds the table:
-- entries older than the configured age are never used and are pruned, and
-- the least recently used go first when it is full.
CREATE TABLE package_verdicts (
    cache_key  TEXT PRIMARY KEY,
    verdict    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL
);
CREATE INDEX package_verdicts_used_at ON package_verdicts (used_at);
CREATE INDEX package_verdicts_created_at ON package_verdicts (created_at);
