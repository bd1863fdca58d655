// Package sqlite is the tracker's default metadata store: the MogileFS schema (version 17) in one
// SQLite file, through the pure-Go modernc.org/sqlite driver.
//
// The file is opened in WAL mode with one writer connection (every transaction begins IMMEDIATE, so
// writers queue on the database lock instead of failing half-way) and a pool of read-only
// connections. Several trackers (or Store values) may open the same file on one machine: SQLite's
// file locks and the busy timeout serialise their writers, queue claims use compare-and-set
// leases, and named locks live in the `lock` table as in MogileFS::Store::SQLite.
//
// Open creates the parent directory (mode 0750) and the schema when they are missing. An existing
// MogileFS SQLite database is used as is.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/internal/sqlstore"
)

// Defaults of the options.
const (
	DefaultBusyTimeout = 30 * time.Second
	DefaultReaders     = 4
	DefaultLocateTTL   = time.Second
)

// Option changes how Open sets the store up.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	busyTimeout time.Duration
	readers     int
	locateTTL   time.Duration
}

// WithLogger sets the logger for notes such as transaction retries; the default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBusyTimeout sets how long a statement waits for another connection's write lock before it
// fails (default DefaultBusyTimeout).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// WithReaders sets the size of the read-only connection pool (default DefaultReaders).
func WithReaders(n int) Option { return func(o *options) { o.readers = n } }

// WithLocateTTL sets how long Locate (get_paths) may answer a key from memory (default
// DefaultLocateTTL); 0 turns the cache off. Writes through this Store update the cache at once, and
// a change to files or their copies committed by any other connection to the file (another
// tracker) empties it before the next Locate answers (see openChanges); the TTL only bounds how
// long an entry is kept.
func WithLocateTTL(d time.Duration) Option { return func(o *options) { o.locateTTL = d } }

// Store is a store.Store on one SQLite file. It is safe for concurrent use; Close releases it.
type Store struct {
	*sqlstore.Store
	locks *locker
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path and its schema.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{busyTimeout: DefaultBusyTimeout, readers: DefaultReaders, locateTTL: DefaultLocateTTL}
	for _, f := range opts {
		f(&o)
	}
	if o.readers < 1 {
		o.readers = 1
	}
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	w, err := openDB(path, o.busyTimeout, false)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	for _, q := range schema {
		if _, err := w.ExecContext(ctx, q); err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: create schema in %s: %w", path, err)
		}
	}
	r, err := openDB(path, o.busyTimeout, true)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(o.readers)
	r.SetMaxIdleConns(o.readers)
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	l := newLocker(w, o.logger)
	so := sqlstore.Options{Write: w, Read: r, Dialect: dialect{}, Lock: l.lock, Logger: o.logger, LocateTTL: o.locateTTL}
	if o.locateTTL > 0 {
		var closeChanges func() error
		if so.Changes, closeChanges, err = openChanges(ctx, path, o.busyTimeout, w, o.logger); err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		so.Close = closeChanges
	}
	s, err := sqlstore.New(ctx, so)
	if err != nil {
		r.Close()
		w.Close()
		if so.Close != nil {
			so.Close()
		}
		return nil, err
	}
	return &Store{Store: s, locks: l}, nil
}

// openChanges sets up what tells the Locate cache about other connections' commits: the
// Locate generation (mogway_locate_gen, bumped by triggers on file and file_on) and, as the commit
// mark read without a statement, the WAL-index header of the -shm file. A connection of its own is
// held open for the Store's life: it keeps the database open in WAL mode, so SQLite never removes
// or truncates the -shm file under the mapping. The file is the one SQLite names for the database
// (PRAGMA database_list, symbolic links resolved), and it must prove live (provesLive). Otherwise (no WAL, an exclusive locking mode, no mmap), the cache reads the
// generation on every Locate instead. The returned func releases both.
func openChanges(ctx context.Context, path string, busy time.Duration, w *sql.DB, log *slog.Logger) (*sqlstore.Changes, func() error, error) {
	db, err := openDB(path, busy, true)
	if err != nil {
		return nil, nil, err
	}
	keep, err := db.Conn(ctx)
	var file string
	if err == nil {
		var n int64
		err = keep.QueryRowContext(ctx, locateGenQuery).Scan(&n) // opens the WAL index
		if err == nil {
			var seq int
			var name string
			err = keep.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file)
		}
		if err != nil {
			keep.Close()
		}
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("sqlite: read the Locate generation: %w", err)
	}
	ch := &sqlstore.Changes{GenQuery: locateGenQuery}
	wi, err := openWALIndex(file)
	if err == nil {
		err = provesLive(ctx, wi, w)
	}
	if err != nil {
		log.Warn("sqlite: get_paths reads the database's generation on every lookup", "err", err)
		wi.close()
		wi = nil
	} else {
		ch.Mark = wi.mark
	}
	return ch, func() error { return errors.Join(wi.close(), keep.Close(), db.Close()) }, nil
}

// provesLive checks that wi is the WAL index SQLite writes: a commit through w must move its
// header. The commit bumps the generation (a row rewritten with its own value writes no page, so
// commits nothing), which only makes other trackers' caches start over once.
func provesLive(ctx context.Context, wi *walIndex, w *sql.DB) error {
	before, ok := wi.mark()
	if !ok {
		return errors.New("sqlite: the WAL-index header cannot be read")
	}
	if _, err := w.ExecContext(ctx, "UPDATE mogway_locate_gen SET n = n + 1 WHERE id = 1"); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if after, ok := wi.mark(); !ok || after == before {
		return errors.New("sqlite: a commit did not move the WAL-index header of the -shm file")
	}
	return nil
}

// Close releases the locks this Store still holds and closes the database.
func (s *Store) Close() error {
	return errors.Join(s.locks.releaseAll(), s.Store.Close())
}

// openDB opens a pool on path with WAL, the busy timeout and, for writers, immediate transactions.
func openDB(path string, busy time.Duration, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// dialect is SQLite's side of sqlstore.
type dialect struct{}

func (dialect) Name() string         { return "sqlite" }
func (dialect) InsertIgnore() string { return "INSERT OR IGNORE" }

func (dialect) IsDup(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func (dialect) IsRetryable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}
