package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/mattn/go-sqlite3"

	"github.com/evindex/evindex/store"
)

// The SQLite peer holds the same records as the store with the same
// secondary indexes (events by type, contract, transaction and address;
// rewards by height and alias; blocks; checkpoint and coverage), written
// in batched transactions with prepared statements, in WAL mode with
// synchronous=NORMAL: the fastest configuration that still survives a
// process crash. Unlike bbolt's commit, a WAL commit at NORMAL is not
// fsynced, so a power loss can drop the last commits.
const sqliteDriverName = "github.com/mattn/go-sqlite3 v1.14.32 (cgo)"

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS events (
	source TEXT NOT NULL, height INTEGER NOT NULL, tx_index INTEGER NOT NULL, event_index INTEGER NOT NULL,
	block_id TEXT NOT NULL, block_time INTEGER NOT NULL, tx_id TEXT NOT NULL,
	type TEXT NOT NULL, contract TEXT NOT NULL, payload BLOB,
	PRIMARY KEY (source, height, tx_index, event_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, source, height, tx_index, event_index);
CREATE INDEX IF NOT EXISTS events_by_contract ON events (contract, source, height, tx_index, event_index);
CREATE INDEX IF NOT EXISTS events_by_tx ON events (tx_id, source, height, tx_index, event_index);
CREATE TABLE IF NOT EXISTS event_addresses (
	address TEXT NOT NULL, source TEXT NOT NULL, height INTEGER NOT NULL, tx_index INTEGER NOT NULL, event_index INTEGER NOT NULL,
	PRIMARY KEY (address, source, height, tx_index, event_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
	source TEXT NOT NULL, height INTEGER NOT NULL, block_id TEXT NOT NULL, block_time INTEGER NOT NULL,
	event_count INTEGER NOT NULL, status TEXT NOT NULL,
	PRIMARY KEY (source, height)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rewards (
	source TEXT NOT NULL, account TEXT NOT NULL, time INTEGER NOT NULL, id TEXT NOT NULL,
	kind TEXT NOT NULL, height INTEGER, raw_amount INTEGER NOT NULL, unit TEXT NOT NULL, decimals INTEGER NOT NULL,
	details BLOB,
	PRIMARY KEY (source, account, time, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rewards_by_height ON rewards (source, height);
CREATE TABLE IF NOT EXISTS reward_aliases (
	alias TEXT NOT NULL, source TEXT NOT NULL, account TEXT NOT NULL, time INTEGER NOT NULL, id TEXT NOT NULL,
	PRIMARY KEY (alias, source, account, time, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
	source TEXT PRIMARY KEY, height INTEGER NOT NULL, block_id TEXT NOT NULL, time INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS coverage (
	source TEXT NOT NULL, from_height INTEGER NOT NULL, to_height INTEGER NOT NULL,
	PRIMARY KEY (source, from_height)
);
CREATE TABLE IF NOT EXISTS sources (
	name TEXT PRIMARY KEY, kind TEXT NOT NULL, events INTEGER NOT NULL, blocks INTEGER NOT NULL, rewards INTEGER NOT NULL
);
`

// Per-connection settings. The page cache is 64 MiB and reads go through
// a memory map, like bbolt's.
var sqlitePragmas = []string{
	"PRAGMA journal_mode=WAL",
	"PRAGMA cache_size=-65536",
	"PRAGMA mmap_size=4294967296",
	"PRAGMA temp_store=MEMORY",
	"PRAGMA busy_timeout=5000",
}

var registerOnce sync.Once

// openSQLite opens (creating) the peer database at path. bulk sets
// synchronous=OFF for filling the query database, where durability does
// not matter; every measured phase uses NORMAL.
func openSQLite(path string, bulk bool) (*sql.DB, error) {
	registerOnce.Do(func() {
		for _, sync := range []string{"NORMAL", "OFF"} {
			pragmas := append(append([]string(nil), sqlitePragmas...), "PRAGMA synchronous="+sync)
			sql.Register("sqlite3-evbench-"+sync, &sqlite3.SQLiteDriver{
				ConnectHook: func(c *sqlite3.SQLiteConn) error {
					for _, p := range pragmas {
						if _, err := c.Exec(p, nil); err != nil {
							return fmt.Errorf("%s: %w", p, err)
						}
					}
					return nil
				},
			})
		}
	})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite dir: %w", err)
	}
	driver := "sqlite3-evbench-NORMAL"
	if bulk {
		driver = "sqlite3-evbench-OFF"
	}
	db, err := sql.Open(driver, "file:"+path+"?_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if _, err := db.Exec(sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite schema: %w", err)
	}
	return db, nil
}

// sqliteWriter writes batches to the peer, one transaction per Apply call,
// with statements prepared once.
type sqliteWriter struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

var sqliteStatements = map[string]string{
	"event":      `INSERT OR REPLACE INTO events (source, height, tx_index, event_index, block_id, block_time, tx_id, type, contract, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"address":    `INSERT OR IGNORE INTO event_addresses (address, source, height, tx_index, event_index) VALUES (?, ?, ?, ?, ?)`,
	"block":      `INSERT OR REPLACE INTO blocks (source, height, block_id, block_time, event_count, status) VALUES (?, ?, ?, ?, ?, ?)`,
	"reward":     `INSERT OR REPLACE INTO rewards (source, account, time, id, kind, height, raw_amount, unit, decimals, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"alias":      `INSERT OR IGNORE INTO reward_aliases (alias, source, account, time, id) VALUES (?, ?, ?, ?, ?)`,
	"checkpoint": `INSERT OR REPLACE INTO checkpoints (source, height, block_id, time, updated_at) VALUES (?, ?, ?, ?, ?)`,
	"covFind":    `SELECT from_height, to_height FROM coverage WHERE source = ? AND from_height <= ? AND to_height + 1 >= ?`,
	"covDelete":  `DELETE FROM coverage WHERE source = ? AND from_height = ?`,
	"covInsert":  `INSERT INTO coverage (source, from_height, to_height) VALUES (?, ?, ?)`,
	"source":     `INSERT INTO sources (name, kind, events, blocks, rewards) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, events = events + excluded.events, blocks = blocks + excluded.blocks, rewards = rewards + excluded.rewards`,
}

func newSQLiteWriter(db *sql.DB) (*sqliteWriter, error) {
	w := &sqliteWriter{db: db, stmts: map[string]*sql.Stmt{}}
	for name, q := range sqliteStatements {
		st, err := db.Prepare(q)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("prepare %s: %w", name, err)
		}
		w.stmts[name] = st
	}
	return w, nil
}

func (w *sqliteWriter) Close() {
	for _, st := range w.stmts {
		st.Close()
	}
}

// Apply writes the batches in one transaction, like store.Apply.
func (w *sqliteWriter) Apply(ctx context.Context, batches ...store.Batch) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite begin: %w", err)
	}
	defer tx.Rollback()
	st := func(name string) *sql.Stmt { return tx.StmtContext(ctx, w.stmts[name]) }
	ev, addr, blk, rw, al, cp := st("event"), st("address"), st("block"), st("reward"), st("alias"), st("checkpoint")
	covFind, covDel, covIns, src := st("covFind"), st("covDelete"), st("covInsert"), st("source")
	for i := range batches {
		b := &batches[i]
		for j := range b.Events {
			e := &b.Events[j]
			if _, err := ev.Exec(b.Source, e.Height, e.TxIndex, e.EventIndex, e.BlockID, e.BlockTime.UnixNano(), e.TxID, e.Type, e.Contract, []byte(e.Payload)); err != nil {
				return fmt.Errorf("sqlite event %d/%d/%d: %w", e.Height, e.TxIndex, e.EventIndex, err)
			}
			for _, a := range e.Addresses {
				if _, err := addr.Exec(a, b.Source, e.Height, e.TxIndex, e.EventIndex); err != nil {
					return fmt.Errorf("sqlite event address: %w", err)
				}
			}
		}
		for j := range b.Blocks {
			k := &b.Blocks[j]
			if _, err := blk.Exec(b.Source, k.Height, k.BlockID, k.BlockTime.UnixNano(), k.EventCount, k.Status); err != nil {
				return fmt.Errorf("sqlite block %d: %w", k.Height, err)
			}
		}
		for j := range b.Rewards {
			r := &b.Rewards[j]
			raw, err := strconv.ParseInt(r.RawAmount, 10, 64)
			if err != nil {
				return fmt.Errorf("sqlite reward %s: amount %q: %w", r.ID, r.RawAmount, err)
			}
			var height any
			if r.HasHeight {
				height = r.Height
			}
			t := r.Time.UnixNano()
			if _, err := rw.Exec(b.Source, r.Account, t, r.ID, r.Kind, height, raw, r.Unit, r.Decimals, []byte(r.Details)); err != nil {
				return fmt.Errorf("sqlite reward %s: %w", r.ID, err)
			}
			for _, a := range r.Aliases {
				if _, err := al.Exec(a, b.Source, r.Account, t, r.ID); err != nil {
					return fmt.Errorf("sqlite reward alias: %w", err)
				}
			}
		}
		if c := b.Coverage; c != nil {
			if err := mergeSQLiteCoverage(covFind, covDel, covIns, b.Source, c.From, c.To); err != nil {
				return err
			}
		}
		if c := b.Checkpoint; c != nil {
			if _, err := cp.Exec(b.Source, c.Height, c.BlockID, c.Time.UnixNano(), 0); err != nil {
				return fmt.Errorf("sqlite checkpoint: %w", err)
			}
		}
		if _, err := src.Exec(b.Source, b.Kind, len(b.Events), len(b.Blocks), len(b.Rewards)); err != nil {
			return fmt.Errorf("sqlite source counts: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite commit: %w", err)
	}
	return nil
}

// mergeSQLiteCoverage joins [from, to] with the ranges it overlaps or
// touches, as the store does.
func mergeSQLiteCoverage(find, del, ins *sql.Stmt, source string, from, to uint64) error {
	rows, err := find.Query(source, to+1, from)
	if err != nil {
		return fmt.Errorf("sqlite coverage: %w", err)
	}
	var doomed []uint64
	for rows.Next() {
		var f, t uint64
		if err := rows.Scan(&f, &t); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite coverage: %w", err)
		}
		from, to = min(from, f), max(to, t)
		doomed = append(doomed, f)
	}
	rows.Close()
	for _, f := range doomed {
		if _, err := del.Exec(source, f); err != nil {
			return fmt.Errorf("sqlite coverage: %w", err)
		}
	}
	if _, err := ins.Exec(source, from, to); err != nil {
		return fmt.Errorf("sqlite coverage: %w", err)
	}
	return nil
}

// sqliteCheckpoint returns the peer's checkpoint height (0 when none).
func sqliteCheckpoint(db *sql.DB) (uint64, error) {
	var h uint64
	err := db.QueryRow(`SELECT height FROM checkpoints WHERE source = ?`, sourceName).Scan(&h)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite checkpoint: %w", err)
	}
	return h, nil
}

// sqliteFileBytes is the size of the database with its WAL after a
// checkpoint folded the WAL into the main file.
func sqliteFileBytes(db *sql.DB, path string) (int64, error) {
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return 0, fmt.Errorf("sqlite wal checkpoint: %w", err)
	}
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err == nil {
			total += fi.Size()
		}
	}
	return total, nil
}
