-- Follow-up (跟踪回访): scheduled check-ins, level changes with their
-- sign-off, and school calendars. See docs/followup.md.

-- One row per scheduled check-in. A pending one has done_at, escalated_seq
-- and cancelled_at all NULL; the escalation scanner reads those by due_at.
CREATE TABLE checkins (
    id                TEXT    PRIMARY KEY,     -- case id '/' num, e.g. C000012/3
    case_id           TEXT    NOT NULL REFERENCES cases(id),
    num               INTEGER NOT NULL,
    role              TEXT    NOT NULL,        -- who makes it
    escalate_to       TEXT    NOT NULL,        -- who hears when it is missed
    due_at            TEXT    NOT NULL,
    planned_at        TEXT    NOT NULL,
    done_at           TEXT,
    outcome           TEXT,                    -- seen_well / concern / escalate / not_reached
    note              TEXT,                    -- free text, as a step note
    recorded_by_name  TEXT,
    recorded_by_role  TEXT,
    command_id        TEXT,
    escalated_seq     INTEGER,                 -- the checkin_missed event
    cancelled_at      TEXT,                    -- re-planned, or the case closed
    UNIQUE (case_id, num)
);
CREATE INDEX checkins_pending_by_due ON checkins(due_at)
    WHERE done_at IS NULL AND escalated_seq IS NULL AND cancelled_at IS NULL;

-- Every level change and lowering proposal. A pending proposal has
-- applied_at and superseded_at NULL; an applied lowering names both people.
CREATE TABLE level_changes (
    id                 INTEGER PRIMARY KEY,
    case_id            TEXT    NOT NULL REFERENCES cases(id),
    from_level         TEXT    NOT NULL,
    from_imminent      INTEGER NOT NULL,
    to_level           TEXT    NOT NULL,
    to_imminent        INTEGER NOT NULL,
    reason             TEXT    NOT NULL,
    proposed_by_name   TEXT    NOT NULL,
    proposed_by_role   TEXT    NOT NULL,
    proposed_at        TEXT    NOT NULL,
    evidence           TEXT,                   -- JSON: screening results shown to the confirmer
    confirmed_by_name  TEXT,
    confirmed_by_role  TEXT,
    applied_at         TEXT,
    superseded_at      TEXT,
    seq                INTEGER                 -- the event that applied it
);
CREATE INDEX level_changes_by_case ON level_changes(case_id, id);

-- A school's calendar as loaded (`crisisdesk calendar load`).
CREATE TABLE school_calendars (
    school     TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    loaded_at  TEXT NOT NULL
);
