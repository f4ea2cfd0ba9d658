-- fundledger schema, migration 5: the state snapshot stored in pieces.
--
-- Still derived data, not a ledger table (migration 3). The encoded state
-- (schema/FORMAT.md section 7) is now stored as consecutive pieces, each
-- a row of `state_snapshot_pieces` named by the SHA-256 of its bytes;
-- `state_snapshot.pieces` lists those names in order (32 bytes each), and
-- the state is the concatenation of the pieces' bytes. A snapshot that
-- replaces another writes only the pieces not already stored and deletes
-- the pieces it no longer names, so that at a million entries it writes
-- a few hundred kilobytes instead of every call again. The snapshot the
-- previous layout stored is dropped: a writable open writes a new one.
DROP TABLE state_snapshot;

CREATE TABLE state_snapshot (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    entry_hash BLOB    NOT NULL CHECK (length(entry_hash) = 32),
    pieces     BLOB    NOT NULL CHECK (length(pieces) % 32 = 0)
) STRICT;

CREATE TABLE state_snapshot_pieces (
    hash  BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    bytes BLOB NOT NULL CHECK (length(bytes) > 0)
) STRICT;
