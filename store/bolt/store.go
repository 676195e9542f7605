// Package bolt keeps evindex's records in one bbolt file: the embedded
// store.Store, one process on one box. Apply is the only write path:
// records and the checkpoint they complete commit together.
package bolt

import (
	"github.com/evindex/evindex/store"

	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// FileName is the database file inside the data directory.
const FileName = "evindex.db"

// Options configure Open.
type Options struct {
	// LockTimeout is how long Open waits for another process's lock on
	// the file before failing with ErrLocked. Default 1 s.
	LockTimeout time.Duration
	// ReadOnly opens the file with a shared lock and never migrates it.
	// It refuses a file with a damaged meta page (see Open).
	ReadOnly bool
	// Verify makes Open check the whole file before it hands it over:
	// every page's structure before a pending migration writes into it,
	// and the store's own invariants (Check) once it is migrated, so a
	// command that rewrites the file (evindex migrate) never writes into
	// a damaged one. It reads the entire file: the daemon leaves it off.
	Verify bool
	// NoSync skips fsync after each commit. THIS IS UNSAFE: a power loss
	// can lose committed batches or corrupt the file. Benchmarks only.
	NoSync bool
	// Now is the clock for checkpoint timestamps. Default time.Now.
	Now func() time.Time
	// RecordWrites, when set, is called after each committed Apply
	// transaction with every Put and Delete it made, in order (copies).
	// It is for benchmarks that replay exactly what Apply writes with
	// bbolt alone (evbench's floor); it costs memory and time, so
	// production leaves it nil, which costs one comparison per write.
	RecordWrites func([]WriteOp)
}

// Store is an open evindex bbolt file.
type Store struct {
	db     *bbolt.DB
	path   string
	now    func() time.Time
	codecs codecSet
	// recordWrites is Options.RecordWrites.
	recordWrites func([]WriteOp)
	// claims are the outbox rows senders hold (ClaimDeliveries): in
	// memory, since the file has one process and they end with it.
	claims outboxClaims
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Backuper = (*Store)(nil)
	_ store.Checker  = (*Store)(nil)
)

// Open opens (creating if needed) dir/evindex.db, with the directory at mode
// 0700 and the file at 0600, and applies pending migrations. It returns
// ErrLocked when another process holds the file, ErrSchemaTooNew for a file
// from a newer build and ErrCorrupt for a file bbolt cannot read.
//
// Of bbolt's two meta pages one may be damaged while the other is sound
// (a torn write); bbolt then reads the file as of the commit the sound one
// names, which may be the commit before the last. A writing open accepts
// that: data and checkpoints commit together, so the daemon resumes at
// that commit's checkpoint and ingests the rest again, and its first
// commit rewrites the damaged page. A read-only open refuses it with
// ErrCorrupt: an export or a copy would silently lack the last commit.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	path := filepath.Join(dir, FileName)
	if err := secureFiles(dir, path, opts.ReadOnly); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	if err := probeFile(path, opts); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := createFile(path, opts); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, now: opts.Now, recordWrites: opts.RecordWrites}
	if opts.ReadOnly {
		if err := checkMetaPages(path, db.Info().PageSize); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w: %v", path, store.ErrCorrupt, err)
		}
		var v uint64
		err := guard("open "+path, func() error {
			return db.View(func(tx *bbolt.Tx) error { v = migrations.Version(tx); return nil })
		})
		switch {
		case err != nil:
			db.Close()
			return nil, err
		case v > migrations.Latest():
			db.Close()
			return nil, fmt.Errorf("open %s: %w: file is at version %d, this build knows %d", path, store.ErrSchemaTooNew, v, migrations.Latest())
		case v < migrations.Latest():
			db.Close()
			return nil, fmt.Errorf("open %s: schema version %d is older than %d: run evindex migrate", path, v, migrations.Latest())
		}
		if err := checkSchema(db, path); err != nil {
			db.Close()
			return nil, err
		}
		if err := s.loadCodecs(); err != nil {
			db.Close()
			return nil, err
		}
		if opts.Verify {
			if err := s.Check(context.Background()); err != nil {
				db.Close()
				return nil, fmt.Errorf("open %s: %w", path, err)
			}
		}
		return s, nil
	}
	if opts.Verify {
		if err := s.verifyPages(context.Background()); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	err = guard("open "+path, func() error {
		from, _, err := migrations.Up(db, migrations.All)
		if errors.Is(err, migrations.ErrTooNew) {
			return fmt.Errorf("%w: file is at version %d, this build knows %d", store.ErrSchemaTooNew, from, migrations.Latest())
		}
		return err
	})
	if err != nil {
		db.Close()
		if errors.Is(err, store.ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkSchema(db, path); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadCodecs(); err != nil {
		db.Close()
		return nil, err
	}
	if opts.Verify {
		if err := s.verifyRecords(context.Background()); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	return s, nil
}

// loadCodecs reads the file's payload dictionaries, under guard: they are
// the first pages past the schema version that Open reads.
func (s *Store) loadCodecs() error {
	return guard("open "+s.path, func() error {
		if err := s.db.View(s.codecs.load); err != nil {
			return fmt.Errorf("open %s: %w", s.path, err)
		}
		return nil
	})
}

// guard runs fn under trapFaults and turns a panic into ErrCorrupt.
func guard(what string, fn func() error) error {
	err, crashed := trapFaults(fn)
	if crashed != nil {
		return fmt.Errorf("%s: %w: %v", what, store.ErrCorrupt, crashed)
	}
	return err
}

// trapFaults runs fn with memory faults turned into panics and returns
// the value of any panic. bbolt reads the file through mmap and asserts on
// pages it does not recognize: a damaged file must give an error, never
// crash the process. (Faults are trapped only in the calling goroutine.)
func trapFaults(fn func() error) (err error, crashed any) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			crashed = r
		}
	}()
	return fn(), nil
}

// probeFile checks an existing file before it is opened for use: it must
// not be empty, its meta pages must be readable and it must be as long as
// they say. Reading a page past the end of a truncated file through the
// mmap kills the process with SIGBUS, so this is checked first, from the
// meta pages alone.
func probeFile(path string, opts Options) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly {
		return nil // a new file
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if fi.Size() == 0 {
		if !opts.ReadOnly {
			return nil // bbolt initializes an empty file as a new database
		}
		return fmt.Errorf("open %s: %w: the file is empty", path, store.ErrCorrupt)
	}
	var need int64
	err = guard("open "+path, func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.LockTimeout, ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error { need = tx.Size(); return nil })
	})
	switch {
	case err == nil:
	case errors.Is(err, store.ErrCorrupt):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("open %s: %w", path, store.ErrLocked)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open %s: %w", path, err)
	default:
		return fmt.Errorf("open %s: %w: %v", path, store.ErrCorrupt, err)
	}
	if fi.Size() < need {
		return fmt.Errorf("open %s: %w: the file is truncated: %d bytes, its pages need %d", path, store.ErrCorrupt, fi.Size(), need)
	}
	return nil
}

// createFile makes a new database file with every migration applied under
// a temporary name and renames it into place, so a process killed while
// creating it leaves no file at path, never one without a schema (which a
// read-only open, `evindex check`, would refuse as older than this build).
// An existing, non-empty file is left alone.
func createFile(path string, opts Options) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open %s: %w", path, err)
	}
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create %s: remove an unfinished earlier attempt: %w", path, err)
	}
	db, err := openBolt(tmp, opts)
	if err != nil {
		return err
	}
	_, _, err = migrations.Up(db, migrations.All)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mmapReserve is the least address space a writing store maps for its
// file: 64 GiB on 64-bit platforms, 1 GiB elsewhere. bbolt remaps the file
// when a commit outgrows the mapping, and a remap waits until every read
// transaction has ended while every new read waits behind it: one slow
// reader (a backup to a slow client) then stalls ingestion and every
// query. Mapping far ahead of the file means a growing file is not
// remapped at all until it passes the reserve. It costs address space
// only: pages past the end of the file are never touched, and RSS counts
// only pages read.
const mmapReserve = 1 << (30 + 6*(strconv.IntSize/64))

// mmapSize is the mapping to ask for a file of size bytes: the reserve, or
// twice the file once it has outgrown that.
func mmapSize(size int64) int {
	return int(max(int64(mmapReserve), min(2*size, int64(math.MaxInt/2))))
}

// growStep is how far ahead of its data a file of size bytes is grown
// (bbolt's AllocSize). bbolt grows a file that fits its mapping to the
// whole mapping, and one past it by AllocSize: with the mapping reserved
// far ahead, every file would be grown by bbolt's 16 MiB default, a tiny
// one included. A sixteenth of the data, between 1 and 16 MiB, keeps
// small files small and large ones growing in large steps.
func growStep(size int64) int {
	return int(min(max(size/16, 1<<20), 16<<20))
}

func openBolt(path string, opts Options) (db *bbolt.DB, err error) {
	mapSize := 0
	if !opts.ReadOnly {
		var size int64
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		mapSize = mmapSize(size)
	}
	open := func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{
			Timeout:         opts.LockTimeout,
			FreelistType:    bbolt.FreelistMapType,
			ReadOnly:        opts.ReadOnly,
			NoSync:          opts.NoSync,
			InitialMmapSize: mapSize,
			// Read the free list now, under guard, rather than in the
			// goroutine of a later Check where a bad page would crash.
			PreLoadFreelist: true,
		})
		return err
	}
	// bbolt panics on some malformed files instead of returning an error;
	// a corrupt file must be a one-line error, never a crash.
	err = guard("open "+path, open)
	if errors.Is(err, syscall.ENOMEM) && mapSize > 0 {
		// An address-space limit (ulimit -v) refused the reserve: map
		// as bbolt would on its own, and remap as the file grows.
		mapSize = 0
		err = guard("open "+path, open)
	}
	switch {
	case err == nil:
		if !opts.ReadOnly {
			if fi, err := os.Stat(path); err == nil {
				db.AllocSize = growStep(fi.Size())
			}
		}
		return db, nil
	case errors.Is(err, store.ErrCorrupt):
		return nil, err
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open %s: %w", path, store.ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("open %s: %w: %v", path, store.ErrCorrupt, err)
	default:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// view runs fn in a read transaction with faults trapped: a query that meets a
// damaged page returns ErrCorrupt naming the file instead of crashing the
// process (bbolt panics on a page it cannot parse, and a page past the
// mapping's end would fault). A corrupt record fn itself found is named
// the same way, so every read error of a damaged file says which file.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	err, crashed := trapFaults(func() error { return s.db.View(fn) })
	switch {
	case crashed != nil:
		return fmt.Errorf("read %s: %w: %v", s.path, store.ErrCorrupt, crashed)
	case errors.Is(err, store.ErrCorrupt):
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	return err
}

// Close releases the file. Pending read transactions finish first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// SchemaVersion is the file's schema version.
func (s *Store) SchemaVersion() uint64 {
	var v uint64
	_ = s.db.View(func(tx *bbolt.Tx) error { v = migrations.Version(tx); return nil })
	return v
}

// Backup writes a consistent copy of the whole file to w while writers
// continue, and returns the bytes written.
//
// The copy is first taken into an unnamed temporary file next to the
// database, in one read transaction whose length depends only on the
// local disk; w (a client on a slow link) is then fed from that file with
// no transaction open. A read transaction held at the client's pace would
// keep every page it sees from being reused, so the file would grow for as
// long as the slowest client took.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".evindex-backup-*")
	if err != nil {
		return 0, fmt.Errorf("backup: temporary copy: %w", err)
	}
	defer tmp.Close()
	// Unlinked at once: the copy needs no name, and a crash leaves nothing.
	if err := os.Remove(tmp.Name()); err != nil {
		return 0, fmt.Errorf("backup: temporary copy: %w", err)
	}
	var size int64
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		size, err = tx.WriteTo(ctxWriter{ctx, tmp})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("backup: temporary copy in %s: %w", filepath.Dir(s.path), err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	n, err := io.Copy(ctxWriter{ctx, w}, tmp)
	if err == nil && n != size {
		err = fmt.Errorf("copied %d of %d bytes", n, size)
	}
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Check verifies the file's page structure and the store's own invariants
// (every index entry points at a record). It returns every problem found,
// joined, or nil when the file is sound.
func (s *Store) Check(ctx context.Context) error {
	var errs []error
	err := s.db.View(func(tx *bbolt.Tx) error {
		var (
			err    error
			walked bool
		)
		if errs, walked, err = s.checkPages(ctx, tx); err != nil || !walked {
			return err
		}
		errs = append(errs, checkRecords(ctx, tx)...)
		return nil
	})
	return checkResult(err, errs)
}

// verifyPages is the page half of Check: what a file at any schema
// version must pass before a migration writes into it.
func (s *Store) verifyPages(ctx context.Context) error {
	var errs []error
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		errs, _, err = s.checkPages(ctx, tx)
		return err
	})
	return checkResult(err, errs)
}

// verifyRecords is the other half of Check, on a migrated file.
func (s *Store) verifyRecords(ctx context.Context) error {
	var errs []error
	err := s.db.View(func(tx *bbolt.Tx) error { errs = checkRecords(ctx, tx); return nil })
	return checkResult(err, errs)
}

// checkResult is a check's outcome: ErrCorrupt with every problem, joined.
func checkResult(err error, errs []error) error {
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", store.ErrCorrupt, errors.Join(errs...))
	}
	return nil
}

// checkPages verifies both meta pages and every page in use: each branch,
// leaf and overflow page parses, and bbolt's own checker finds every page
// reachable or free exactly once. walked is false when a meta page or a
// page in use could not be read: the records cannot be checked then.
func (s *Store) checkPages(ctx context.Context, tx *bbolt.Tx) (errs []error, walked bool, err error) {
	// bbolt's own check runs in a goroutine of its own, where a page
	// it cannot parse would crash the process. Walk every page here
	// first, under guard; only a file that walks cleanly goes on.
	if err := checkMetaPages(s.path, s.db.Info().PageSize); err != nil {
		return []error{err}, false, nil
	}
	err, crashed := trapFaults(func() error { return walkPages(ctx, tx) })
	if crashed != nil {
		return []error{fmt.Errorf("unreadable page: %v", crashed)}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	n := 0
	for e := range tx.Check() { // drained to the end: the checker must not block
		if n++; n <= 20 {
			errs = append(errs, e)
		}
	}
	if n > 20 {
		errs = append(errs, fmt.Errorf("%d page problems in all", n))
	}
	return errs, true, nil
}

// checkRecords verifies what the schema promises: every core bucket is
// there and every index entry points at a record.
func checkRecords(ctx context.Context, tx *bbolt.Tx) []error {
	if missing := missingBuckets(tx); len(missing) > 0 {
		// The index checks read every core bucket.
		return []error{fmt.Errorf("missing buckets: %s", strings.Join(missing, ", "))}
	}
	var errs []error
	_, crashed := trapFaults(func() error { errs = checkIndexes(ctx, tx); return nil })
	if crashed != nil {
		errs = append(errs, fmt.Errorf("unreadable record: %v", crashed))
	}
	return errs
}

// walkPages reads every key and value of every bucket, so every branch,
// leaf and overflow page in use is parsed once.
func walkPages(ctx context.Context, tx *bbolt.Tx) error {
	var walk func(b *bbolt.Bucket) error
	n := 0
	var sum byte // the bytes read, so the reads are not optimized away
	defer runtime.KeepAlive(&sum)
	walk = func(b *bbolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			sum ^= k[len(k)-1]
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					if err := walk(nb); err != nil {
						return err
					}
				}
				continue
			}
			if len(v) > 0 {
				sum ^= v[len(v)-1]
			}
		}
		return nil
	}
	return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return walk(b) })
}
