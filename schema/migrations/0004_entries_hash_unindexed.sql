-- fundledger schema, migration 4: no index on entries.entry_hash.
--
-- Nothing looks entries up by hash, and the chain already makes hashes
-- distinct (each entry names its predecessor's hash, and verify recomputes
-- every one). The UNIQUE index cost a random B-tree insert per entry, which
-- dirtied a different page for almost every entry of a large ledger. The
-- table is rebuilt without it; columns, checks and triggers are otherwise
-- those of migration 1. (DROP TABLE fires no triggers.)
CREATE TABLE entries_v4 (
    seq                 INTEGER PRIMARY KEY CHECK (seq >= 0),
    entry_hash          BLOB    NOT NULL CHECK (length(entry_hash) = 32),
    prev_hash           BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    recorded_at_unix_ms INTEGER NOT NULL,
    kind                TEXT    NOT NULL,
    idempotency_key     TEXT    UNIQUE,
    record              BLOB    NOT NULL
) STRICT;

INSERT INTO entries_v4 (seq, entry_hash, prev_hash, recorded_at_unix_ms, kind, idempotency_key, record)
SELECT seq, entry_hash, prev_hash, recorded_at_unix_ms, kind, idempotency_key, record
FROM entries ORDER BY seq;

DROP TABLE entries;

ALTER TABLE entries_v4 RENAME TO entries;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'fundledger: entries are append-only; record a reversing entry instead');
END;

CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'fundledger: entries are append-only; record a reversing entry instead');
END;
