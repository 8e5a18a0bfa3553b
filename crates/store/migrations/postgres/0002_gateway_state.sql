-- What the gateway needs shared between replicas beyond 0001: per-minute
-- rollout counters, each end user's conversation-risk record, and finding
-- the incident of a request (user reports name a response by request id).

CREATE TABLE rollout_requests (
    name      TEXT    NOT NULL,
    stage     TEXT    NOT NULL,
    minute    BIGINT  NOT NULL,             -- unix time / 60
    requests  BIGINT  NOT NULL,
    PRIMARY KEY (name, stage, minute)
);

CREATE TABLE rollout_incidents (
    name      TEXT    NOT NULL,
    stage     TEXT    NOT NULL,
    minute    BIGINT  NOT NULL,
    category  TEXT    NOT NULL,
    incidents BIGINT  NOT NULL,
    PRIMARY KEY (name, stage, minute, category)
);

-- Scores and times only (the engine's AccountRisk as JSON), never text.
CREATE TABLE account_risk (
    tenant     TEXT    NOT NULL,
    end_user   TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (tenant, end_user)
);

CREATE INDEX incidents_by_request ON incidents (request_id);
