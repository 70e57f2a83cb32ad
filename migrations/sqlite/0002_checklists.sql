-- Playbook checklists on cases, escalations already raised, case outcomes.

-- One row per playbook attached to a case; `progress` is the checklist
-- state (JSON of playbook::Progress), replaced on every accepted step.
CREATE TABLE checklists (
    case_id   TEXT NOT NULL REFERENCES cases(id),
    playbook  TEXT NOT NULL,
    progress  TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (case_id, playbook)
);

-- An overdue step escalates once; this remembers which did.
CREATE TABLE escalations (
    case_id   TEXT NOT NULL REFERENCES cases(id),
    playbook  TEXT NOT NULL,
    step      TEXT NOT NULL,
    at        TEXT NOT NULL,
    seq       INTEGER NOT NULL REFERENCES events(seq),
    PRIMARY KEY (case_id, playbook, step)
);

ALTER TABLE cases ADD COLUMN outcome TEXT;
