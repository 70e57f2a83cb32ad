-- crisisdesk schema v1 (SQLite). Timestamps are RFC 3339 UTC text.

-- Credentials: only a SHA-256 of the token is kept.
CREATE TABLE credentials (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  TEXT    NOT NULL,
    revoked_at  TEXT
);

-- The event log the stream serves. `seq` is the stream position: strictly
-- increasing and never reused (AUTOINCREMENT), so a console can resume.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    case_id  TEXT,
    body     TEXT    NOT NULL  -- the event JSON without seq and at
);
CREATE INDEX events_by_case ON events(case_id, seq);

-- Cases. `mode` keeps drills and tests apart from real work: a drill alert
-- never joins a real case of the same student ('actual', 'test' or
-- 'exercise:<exercise_id>').
CREATE TABLE cases (
    num                  INTEGER PRIMARY KEY,
    id                   TEXT    NOT NULL UNIQUE,
    student_id           TEXT    NOT NULL,
    mode                 TEXT    NOT NULL,
    status               TEXT    NOT NULL,
    level                TEXT    NOT NULL,
    imminent             INTEGER NOT NULL,
    category             TEXT    NOT NULL,
    alert_status         TEXT    NOT NULL,
    exercise_id          TEXT,
    opened_at            TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL,
    alert_count          INTEGER NOT NULL,
    acknowledged_by_name TEXT,
    acknowledged_by_role TEXT,
    acknowledged_at      TEXT,
    closed_at            TEXT
);
-- At most one open case per student and mode: new alerts join it.
CREATE UNIQUE INDEX cases_one_open_per_student
    ON cases(student_id, mode) WHERE status != 'closed';

-- Alerts as received. `id` is the producer's dedup key; `body_hash` tells a
-- harmless retry (same body) from a conflicting reuse of an id.
CREATE TABLE alerts (
    id             TEXT    PRIMARY KEY,
    body_hash      TEXT    NOT NULL,
    case_id        TEXT    NOT NULL REFERENCES cases(id),
    seq            INTEGER NOT NULL REFERENCES events(seq),
    received_at    TEXT    NOT NULL,
    credential_id  INTEGER NOT NULL REFERENCES credentials(id),
    body           TEXT    NOT NULL
);
CREATE INDEX alerts_by_case ON alerts(case_id);

-- Console commands already applied, keyed by the sender and its command id,
-- so a re-sent command returns the stored answer instead of acting twice.
CREATE TABLE commands (
    credential_id  INTEGER NOT NULL REFERENCES credentials(id),
    id             TEXT    NOT NULL,
    received_at    TEXT    NOT NULL,
    client_at      TEXT,
    terminal       TEXT,
    op             TEXT    NOT NULL,
    case_id        TEXT,
    result         TEXT    NOT NULL,
    PRIMARY KEY (credential_id, id)
);
