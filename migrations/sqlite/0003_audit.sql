-- The audit trail: append-only, hash-chained (see src/audit/mod.rs).
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    actor_name  TEXT,
    actor_role  TEXT,
    terminal    TEXT,
    case_id     TEXT,
    drill       INTEGER NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX audit_by_case ON audit(case_id, seq);

-- Nothing in the product updates or deletes an entry; the database refuses
-- it too, so a bug cannot do it by accident. (Someone with the file can
-- drop these triggers: that is what the hash chain and checkpoints catch.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
