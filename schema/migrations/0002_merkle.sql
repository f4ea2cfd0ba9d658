-- fundledger schema, migration 2: the Merkle tree and the checkpoint history.
--
-- merkle_nodes holds every perfect subtree hash of the RFC 9162 tree over
-- the entries (schema/FORMAT.md section 8): (level, idx) covers leaves
-- [idx * 2^level, (idx + 1) * 2^level). Derived from entries.record and
-- re-derived by verify.
CREATE TABLE merkle_nodes (
    level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'fundledger: Merkle nodes are append-only'); END;
CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'fundledger: Merkle nodes are append-only'); END;

-- Signed checkpoints (C2SP signed notes, possibly with witness
-- cosignatures) that were issued for or recorded in this ledger.
CREATE TABLE checkpoints (
    id                  INTEGER PRIMARY KEY,
    tree_size           INTEGER NOT NULL CHECK (tree_size >= 0),
    note                TEXT    NOT NULL,
    recorded_at_unix_ms INTEGER NOT NULL
) STRICT;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'fundledger: the checkpoint history is append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'fundledger: the checkpoint history is append-only'); END;
