-- Status reports count devices, not requests: a client id counts at most
-- once per label and status (codepush_reports), and its active count lives
-- where it was last counted (codepush_clients), so counts never go negative.
CREATE TABLE codepush_reports (
    deployment_key TEXT NOT NULL,
    label          TEXT NOT NULL,
    status         TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    PRIMARY KEY (deployment_key, label, status, client_id)
);

CREATE TABLE codepush_clients (
    deployment_key TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    label          TEXT NOT NULL,
    PRIMARY KEY (deployment_key, client_id)
);

-- The number of devices that reported an install or a failure of a label:
-- the sample size of the OTA failure-rate gate.
ALTER TABLE codepush_counts ADD COLUMN clients BIGINT NOT NULL DEFAULT 0;

-- Counts kept before this migration counted reports; they may be negative.
UPDATE codepush_counts SET active = 0 WHERE active < 0;
