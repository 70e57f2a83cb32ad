-- Deadlines that fall at the same moment are taken in one fixed order -
-- by case and playbook, by check-in id, by report id - so the escalations
-- a scan writes come out in the same order on every engine and in every
-- run (before, ties went by row order on SQLite and by chance on
-- PostgreSQL). The indexes carry the tie-breakers, so the scan still reads
-- its slice in index order without sorting what is due.
DROP INDEX checklists_by_next_due;
CREATE INDEX checklists_by_next_due ON checklists(next_due_at, case_id, playbook)
    WHERE next_due_at IS NOT NULL;

DROP INDEX checkins_pending_by_due;
CREATE INDEX checkins_pending_by_due ON checkins(due_at, id)
    WHERE done_at IS NULL AND escalated_seq IS NULL AND cancelled_at IS NULL;

DROP INDEX incident_reports_by_next_due;
CREATE INDEX incident_reports_by_next_due ON incident_reports(next_due_at, id)
    WHERE next_due_at IS NOT NULL;
