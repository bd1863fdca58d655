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
// a commit by any other connection to the file (another tracker) empties it before the next Locate
// answers (PRAGMA data_version, see openVersion); the TTL only bounds how long an entry is kept.
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
	var v *sql.DB
	if o.locateTTL > 0 {
		if v, so.Version, err = openVersion(ctx, path, o.busyTimeout); err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		so.Close = v.Close
	}
	s, err := sqlstore.New(ctx, so)
	if err != nil {
		r.Close()
		w.Close()
		if v != nil {
			v.Close()
		}
		return nil, err
	}
	return &Store{Store: s, locks: l}, nil
}

// openVersion opens the one read-only connection that tells the Locate cache whether the database
// changed: PRAGMA data_version on a connection changes whenever another connection (this store's
// writer, or another process: a second tracker on the file) commits. The pool holds that single
// connection for its whole life, so successive values come from the same connection.
func openVersion(ctx context.Context, path string, busy time.Duration) (*sql.DB, func(context.Context) (int64, error), error) {
	v, err := openDB(path, busy, true)
	if err != nil {
		return nil, nil, err
	}
	v.SetMaxOpenConns(1)
	v.SetMaxIdleConns(1)
	v.SetConnMaxLifetime(0)
	v.SetConnMaxIdleTime(0)
	st, err := v.PrepareContext(ctx, "PRAGMA data_version")
	if err != nil {
		v.Close()
		return nil, nil, fmt.Errorf("sqlite: prepare data_version: %w", err)
	}
	return v, func(ctx context.Context) (int64, error) {
		var n int64
		err := st.QueryRowContext(ctx).Scan(&n)
		return n, err
	}, nil
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
