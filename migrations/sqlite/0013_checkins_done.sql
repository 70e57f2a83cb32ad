-- The 三个一 cadence counts the students reviewed this month (a check-in
-- recorded since the first of the month) each time a console connects:
-- recorded check-ins by when, so that is a range read, not a scan of
-- every check-in a district has planned. See docs/followup.md §8.
CREATE INDEX checkins_done_at ON checkins(done_at) WHERE done_at IS NOT NULL;
