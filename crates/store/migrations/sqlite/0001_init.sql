-- childsafe store, schema 1 (SQLite). Keep in step with ../postgres/0001_init.sql:
-- same tables, columns and meanings; only types and DDL syntax differ.
-- Times are INTEGER microseconds since the Unix epoch (UTC). JSON is TEXT.
-- Nothing here holds content: hashes, ids, categories and findings only.

-- The append-only, hash-chained audit log (see src/audit.rs).
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,      -- 1, 2, 3, ... without gaps
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    reason     TEXT,
    detail     TEXT    NOT NULL,         -- JSON, hashed exactly as stored
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
-- The chain head: the last row's seq and hash, updated in the same
-- transaction as every append, so that cutting rows off the end is detected.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
-- Refuse edits through SQL. Whoever can drop these triggers can edit rows:
-- the hash chain is what detects that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subject          TEXT    NOT NULL,   -- who or what the case is about (src/cases.rs)
    tenant           TEXT,
    end_user         TEXT,
    status           TEXT    NOT NULL,
    categories       TEXT    NOT NULL,   -- JSON array of category names
    opened_at        INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    assignee         TEXT,
    verdict          TEXT,               -- confirm | dismiss
    decided_by       TEXT,
    decided_at       INTEGER,
    decision_reason  TEXT,
    closed_at        INTEGER
);
-- One open case per subject: new findings join it (NCMEC prefers one report per user).
CREATE UNIQUE INDEX cases_one_open_per_subject ON cases (subject) WHERE status IN ('new', 'in_review');
CREATE INDEX cases_by_status ON cases (status, id);

CREATE TABLE case_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    from_status  TEXT,
    to_status    TEXT,
    reason       TEXT
);
CREATE INDEX case_events_by_case ON case_events (case_id, id);

-- Evidence vault items (the bytes are in the vault; this is their metadata).
CREATE TABLE vault_items (
    id              TEXT    PRIMARY KEY,
    sha256          TEXT    NOT NULL,
    md5             TEXT,
    size            INTEGER,
    key_id          TEXT,
    created_at      INTEGER NOT NULL,
    registered_at   INTEGER NOT NULL,
    retain_until    INTEGER,             -- NULL: no retention clock yet; never purged
    legal_hold      BOOLEAN NOT NULL DEFAULT FALSE,
    hold_reason     TEXT,
    destroyed_at    INTEGER,
    destroyed_by    TEXT,
    destroy_reason  TEXT
);
CREATE INDEX vault_items_by_retention ON vault_items (retain_until) WHERE destroyed_at IS NULL;

-- Every access to a vault item's content, with its purpose and reason.
CREATE TABLE vault_access (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id  TEXT    NOT NULL REFERENCES vault_items (id),
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    purpose  TEXT    NOT NULL,           -- view | upload | export | verify
    reason   TEXT    NOT NULL
);
CREATE INDEX vault_access_by_item ON vault_access (item_id, purpose);

CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    tenant          TEXT    NOT NULL,
    end_user        TEXT,
    surface         TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    categories      TEXT    NOT NULL,    -- JSON array of category names
    findings        TEXT    NOT NULL,    -- JSON array of findings
    content_hashes  TEXT    NOT NULL,    -- JSON array of hashes of the content involved
    request_id      TEXT,
    stage           TEXT,                -- rollout stage that served the request
    case_id         INTEGER REFERENCES cases (id)
);
CREATE INDEX incidents_by_user ON incidents (tenant, end_user, at);
CREATE INDEX incidents_by_time ON incidents (at);

CREATE TABLE user_reports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               INTEGER NOT NULL,
    reporter         TEXT    NOT NULL,
    tenant           TEXT,
    response_id      TEXT,
    reason           TEXT    NOT NULL,
    comment          TEXT,
    subject_end_user TEXT,
    vault_item       TEXT REFERENCES vault_items (id),
    content_hashes   TEXT    NOT NULL,
    case_id          INTEGER REFERENCES cases (id)
);
CREATE INDEX user_reports_by_reporter ON user_reports (reporter, at);

CREATE TABLE case_items (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id        INTEGER NOT NULL REFERENCES cases (id),
    item_key       TEXT    NOT NULL UNIQUE,   -- idempotency: queue:<id>, incident:<id>:<n>, report:<id>
    kind           TEXT    NOT NULL,          -- incident | queue_entry | user_report
    source_ref     TEXT    NOT NULL,
    added_at       INTEGER NOT NULL,
    found_at       INTEGER NOT NULL,
    categories     TEXT    NOT NULL,
    findings       TEXT    NOT NULL,
    vault_item     TEXT REFERENCES vault_items (id),
    hashes         TEXT,                      -- JSON ContentHashes of the file, if any
    origin         TEXT    NOT NULL,          -- model_output | user_input | training_data | user_report
    generative_ai  BOOLEAN NOT NULL,
    location       TEXT                       -- JSON ItemLocation
);
CREATE INDEX case_items_by_case ON case_items (case_id, id);
CREATE INDEX case_items_by_vault_item ON case_items (vault_item);

-- The report outbox: one row per case report, a persistent state machine.
CREATE TABLE report_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id          INTEGER NOT NULL UNIQUE REFERENCES cases (id),
    environment      TEXT    NOT NULL,
    status           TEXT    NOT NULL,        -- pending | finished | failed
    step             TEXT    NOT NULL,
    state            TEXT    NOT NULL,        -- JSON, owned by the driver
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_token      TEXT,
    lease_owner      TEXT,
    lease_until      INTEGER,
    last_error       TEXT,
    ncmec_report_id  TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX report_outbox_due ON report_outbox (status, next_attempt_at);

CREATE TABLE report_receipts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id      INTEGER NOT NULL REFERENCES report_outbox (id),
    at             INTEGER NOT NULL,
    step           TEXT    NOT NULL,
    http_status    INTEGER,
    response_code  INTEGER,
    request_id     TEXT,
    body           TEXT    NOT NULL
);
CREATE INDEX report_receipts_by_report ON report_receipts (report_id, id);

-- Enforcement: the facts; the gateway computes ladders and decay from them.
CREATE TABLE strikes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    tenant       TEXT    NOT NULL,
    end_user     TEXT,                        -- NULL: a strike against the tenant itself
    kind         TEXT    NOT NULL,            -- warn | strike | ban
    category     TEXT,
    incident_id  INTEGER REFERENCES incidents (id),
    reason       TEXT
);
CREATE INDEX strikes_by_user ON strikes (tenant, end_user, at);

CREATE TABLE enforcement_actions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT    NOT NULL,
    end_user     TEXT,
    action       TEXT    NOT NULL,            -- suspend | ban
    imposed_at   INTEGER NOT NULL,
    until        INTEGER,                     -- NULL: permanent
    imposed_by   TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    lifted_at    INTEGER,
    lifted_by    TEXT,
    lift_reason  TEXT
);
CREATE INDEX enforcement_by_user ON enforcement_actions (tenant, end_user, lifted_at);

CREATE TABLE appeals (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant           TEXT    NOT NULL,
    end_user         TEXT    NOT NULL,
    action_id        INTEGER REFERENCES enforcement_actions (id),
    filed_at         INTEGER NOT NULL,
    statement        TEXT,
    status           TEXT    NOT NULL,        -- open | granted | denied
    decided_by       TEXT,
    decided_at       INTEGER,
    decision_reason  TEXT
);
CREATE INDEX appeals_by_status ON appeals (status, id);

CREATE TABLE rollouts (
    name        TEXT    PRIMARY KEY,
    stage       INTEGER NOT NULL,
    status      TEXT    NOT NULL,             -- active | halted
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    detail      TEXT    NOT NULL              -- JSON, owned by the gateway
);

CREATE TABLE rollout_transitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL REFERENCES rollouts (name),
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    from_stage   INTEGER,
    to_stage     INTEGER NOT NULL,
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    reason       TEXT    NOT NULL
);

CREATE TABLE admin_tokens (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL,             -- SHA-256 of the secret, hex
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  INTEGER,
    revoked_by  TEXT
);
