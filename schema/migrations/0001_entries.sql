-- fundledger schema, migration 1: the append-only entry chain.
--
-- `record` holds the exact encoded bytes of each entry (schema/FORMAT.md).
-- Every other column is derived from those bytes when the entry is appended
-- and is checked against them by `fundledger verify`; none is trusted.

CREATE TABLE entries (
    seq                 INTEGER PRIMARY KEY CHECK (seq >= 0),
    entry_hash          BLOB    NOT NULL UNIQUE CHECK (length(entry_hash) = 32),
    prev_hash           BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    recorded_at_unix_ms INTEGER NOT NULL,
    kind                TEXT    NOT NULL,
    idempotency_key     TEXT    UNIQUE,
    record              BLOB    NOT NULL
) STRICT;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'fundledger: entries are append-only; record a reversing entry instead');
END;

CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'fundledger: entries are append-only; record a reversing entry instead');
END;
