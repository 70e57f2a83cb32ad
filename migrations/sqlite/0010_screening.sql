-- Screening (心理普查/测评): plans and graded results (issue 12).
-- Names are never stored here: a student's name goes no further than the
-- alert's `student.name` (the relay's identity record).

-- A plan exists before its results are imported; its schools and dates
-- are the denominators of 心理问题发现率 in the period report.
CREATE TABLE screening_plans (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    scale       TEXT    NOT NULL,
    schools     TEXT    NOT NULL,   -- JSON array of school names/codes
    starts_on   TEXT    NOT NULL,   -- YYYY-MM-DD
    ends_on     TEXT    NOT NULL,   -- YYYY-MM-DD, inclusive
    threshold   TEXT    NOT NULL,   -- lowest level that becomes an alert
    created_at  TEXT    NOT NULL
);

-- One graded result per student per plan. `row_hash` is a digest of the
-- imported row (without the name), so a re-import of the same file skips
-- what is already stored; `case_id` is set once the relay confirmed the
-- result's alert, so an interrupted import re-sends only the rest.
CREATE TABLE screening_results (
    plan_id             TEXT    NOT NULL REFERENCES screening_plans(id),
    student_id          TEXT    NOT NULL,
    school              TEXT    NOT NULL,
    grade               TEXT,
    class               TEXT,
    answered_at         TEXT    NOT NULL,   -- RFC 3339 with the file's offset
    row_hash            TEXT    NOT NULL,
    revision            INTEGER NOT NULL,   -- bumped when a corrected row replaces a result
    valid               INTEGER NOT NULL,
    invalid_reason      TEXT,               -- lie_scale, straight_line, too_fast, no_scores
    scale_level         TEXT,               -- none/general/key/high from the scale alone
    level               TEXT,               -- after the multi-source risk rule
    imminent            INTEGER NOT NULL DEFAULT 0,
    route               TEXT,               -- crisis / followup
    category            TEXT,
    class_zh            TEXT,
    class_en            TEXT,
    scale_rule          TEXT    NOT NULL,
    scale_rule_version  INTEGER NOT NULL,
    risk_rule           TEXT,
    risk_rule_version   INTEGER,
    points              INTEGER,
    scores              TEXT    NOT NULL,   -- JSON object, score id -> value
    contributions       TEXT,               -- JSON array, the why
    alert_id            TEXT,               -- set when at or above the plan's threshold
    case_id             TEXT,               -- set when the relay confirmed the alert
    graded_at           TEXT    NOT NULL,
    PRIMARY KEY (plan_id, student_id)
);
CREATE INDEX screening_results_by_student ON screening_results(student_id, answered_at);
