-- fundledger schema, migration 3: the state snapshot.
--
-- Derived data, not a ledger table: one row holding the encoded state
-- (balances, entities, keys, policy; schema/FORMAT.md section 7) after
-- entry `seq`, whose entry hash is `entry_hash`. It is replaced as the
-- ledger grows, so that opening a ledger replays only the entries after
-- it instead of the whole chain. Opening uses it only when `entry_hash`
-- is the stored hash of entry `seq` and the state decodes, and replays in
-- full otherwise; verify recomputes the state at `seq` from the entries and
-- fails (check "snapshot") when the stored bytes differ.
CREATE TABLE state_snapshot (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    entry_hash BLOB    NOT NULL CHECK (length(entry_hash) = 32),
    state      BLOB    NOT NULL
) STRICT;
