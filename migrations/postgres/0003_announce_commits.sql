-- Every commit that moves the stream's head tells the other relays of this
-- database, from inside the transaction: PostgreSQL delivers a NOTIFY when
-- (and only if) its transaction commits, so the announcement can neither
-- come before the events are visible nor be lost to a relay that dies
-- between its commit and a separate NOTIFY (which cost the peers a poll
-- interval). It needs no extra round trip in the writer's transaction, and
-- it also covers the writers that are not relays (`token revoke`,
-- `screening import --db`), which before were seen only by the poll.
--
-- A constraint trigger deferred to commit, reading the head as it stands
-- then: a transaction that moves the head several times (a group of
-- alerts) queues one identical notification per move, and PostgreSQL
-- folds identical notifications of one transaction into one. The payload
-- is the new head; a relay re-reads the stream by `seq` on it.
CREATE FUNCTION announce_event_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crisisdesk_events',
                      (SELECT event_seq FROM log_heads WHERE id = 1)::text);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER log_heads_announce
    AFTER UPDATE OF event_seq ON log_heads
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.event_seq IS DISTINCT FROM OLD.event_seq)
    EXECUTE FUNCTION announce_event_head();
