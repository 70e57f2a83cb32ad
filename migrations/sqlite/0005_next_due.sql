-- The escalation scanner reads only checklists whose next deadline has
-- passed, instead of every open checklist every few seconds. `next_due_at`
-- is the soonest due time of an open step that has not escalated yet
-- (RFC 3339 UTC text, which sorts as time), NULL when nothing on the
-- checklist can go overdue (or its case is closed).
ALTER TABLE checklists ADD COLUMN next_due_at TEXT;
CREATE INDEX checklists_by_next_due ON checklists(next_due_at)
    WHERE next_due_at IS NOT NULL;

-- Checklists from before this column: due for a look at once, so the
-- scanner's first pass computes their real deadline.
UPDATE checklists SET next_due_at = '1970-01-01T00:00:00.000000Z'
    WHERE case_id IN (SELECT id FROM cases WHERE status != 'closed');
