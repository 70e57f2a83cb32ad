-- Incident reports upward (事件信息报告), one per case. `body` is the
-- report as JSON (reporting::IncidentReport), replaced on every change;
-- the columns beside it are what the scanner and the district view query.
CREATE TABLE incident_reports (
    id               TEXT    PRIMARY KEY,
    case_id          TEXT    NOT NULL UNIQUE REFERENCES cases(id),
    drill            INTEGER NOT NULL,
    opened_at        TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    -- Stages submitted and not yet reviewed by the district.
    awaiting_review  INTEGER NOT NULL DEFAULT 0,
    -- Soonest deadline of a stage never submitted and not yet escalated
    -- (RFC 3339 UTC text, which sorts as time); NULL when none is left.
    next_due_at      TEXT,
    body             TEXT    NOT NULL
);
CREATE INDEX incident_reports_by_next_due ON incident_reports(next_due_at)
    WHERE next_due_at IS NOT NULL;

-- A stage that went overdue escalates once; this remembers which did.
CREATE TABLE report_escalations (
    report_id  TEXT NOT NULL REFERENCES incident_reports(id),
    stage      TEXT NOT NULL,
    at         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (report_id, stage)
);
