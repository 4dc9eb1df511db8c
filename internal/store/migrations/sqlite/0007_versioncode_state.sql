-- Whether each versionCode reached a committed edit: pending_commits counts
-- commits requested and not known to have failed (an outcome that is still
-- unknown), committed_at is when Play was known to hold it. A versionCode
-- with neither was only sent in edits Play discarded, and may be uploaded
-- again. Rows from before this migration never said, so they count as one
-- unknown commit each.
ALTER TABLE play_version_codes ADD COLUMN pending_commits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE play_version_codes ADD COLUMN committed_at INTEGER;
UPDATE play_version_codes SET pending_commits = 1;
