// Package sqlstore is the one SQL implementation of store.Store shared by the sqlite and mysql
// packages. The dialects differ only in schema DDL, connection set-up, error classification, the
// "insert unless present" spelling and named locks; those come in through Dialect and Options.
//
// Every statement here is portable between SQLite 3.35+ and MySQL 5.7+/MariaDB 10.3+: REPLACE INTO
// for upserts, plain comparisons instead of LIKE, and optimistic leases for queue claims.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// Dialect is what differs between the SQL engines.
type Dialect interface {
	// Name prefixes error messages ("sqlite", "mysql").
	Name() string
	// IsDup reports whether err is a unique or primary key violation.
	IsDup(err error) bool
	// IsRetryable reports whether a transaction that failed with err may simply be run again
	// (deadlock, lock wait timeout, busy database).
	IsRetryable(err error) bool
	// InsertIgnore is the statement prefix that inserts a row unless its key exists
	// ("INSERT IGNORE", "INSERT OR IGNORE").
	InsertIgnore() string
}

// Locker takes a named lock held until unlock is called; it returns an error wrapping
// store.ErrLocked when the lock is still held elsewhere after timeout.
type Locker func(ctx context.Context, name string, timeout time.Duration) (unlock func(), err error)

// Options wires a Store to its databases.
type Options struct {
	// Write runs every transaction and every write. Required.
	Write *sql.DB
	// Read runs single-statement reads; nil means Write.
	Read *sql.DB
	// Dialect is required.
	Dialect Dialect
	// Lock implements Store.Lock. Required.
	Lock Locker
	// Close is called by Store.Close after the pools are closed; nil means nothing more to close.
	Close func() error
	// Logger receives retries and other notes; nil discards them.
	Logger *slog.Logger
	// LocateTTL, when above zero, turns on the Locate cache: a located key is answered from
	// memory for this long unless a write through this Store changes it first. 0 means no cache.
	LocateTTL time.Duration
	// LocateCacheSize bounds the number of keys in the Locate cache; 0 means DefaultLocateCacheSize.
	LocateCacheSize int
	// Changes, when set with LocateTTL, lets the Locate cache see at once what others (another
	// tracker on the database) commit; nil means such writes reach the cache when its entries
	// expire, LocateTTL after they were read.
	Changes *Changes
}

// Store implements store.Store on database/sql. It is safe for concurrent use.
type Store struct {
	w, r   *sql.DB
	d      Dialect
	lock   Locker
	close  func() error
	log    *slog.Logger
	name   string
	minFid int64 // highest fid that was a file or queued for deletion at open; fids at or below it are never handed out

	locateStmt *sql.Stmt // locateQuery, prepared on r
	locs       *locCache // nil: Locate reads the database every time
	mark       func() (CommitMark, bool)
	genQuery   string    // Changes.GenQuery; "" without Changes
	genStmt    *sql.Stmt // genQuery, prepared on r
}

var _ store.Store = (*Store)(nil)

// New returns a Store over an existing schema. It reads the highest fid that is a file or queued
// for deletion (file_to_delete2, file_to_delete, file_to_delete_later) as the floor at or below
// which no fid is ever allocated (spec 6.2 reads MAX(file.fid): it protects against an
// auto-increment counter that went back; a queued fid needs it too, see fidTakenQuery).
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Write == nil || o.Dialect == nil || o.Lock == nil {
		return nil, errors.New("sqlstore: Options.Write, Dialect and Lock are required")
	}
	s := &Store{w: o.Write, r: o.Read, d: o.Dialect, lock: o.Lock, close: o.Close, log: o.Logger, name: o.Dialect.Name()}
	if s.r == nil {
		s.r = s.w
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	max, err := s.maxTakenFid(ctx)
	if err != nil {
		return nil, err
	}
	s.minFid = max
	if err := s.prepareLocate(ctx, o); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the database pools. Locks still held are released by their connections closing.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.locateStmt, s.genStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if s.close != nil {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// Lock takes a named lock shared by every tracker on the database.
func (s *Store) Lock(ctx context.Context, name string, timeout time.Duration) (func(), error) {
	return s.lock(ctx, name, timeout)
}

// maxTxAttempts bounds how often a transaction is re-run after a deadlock or busy error.
const maxTxAttempts = 10

// retryBackoff is the longest pause before re-running a transaction; the pause grows with the
// attempt and is randomised so that the transactions that deadlocked do not meet again.
const retryBackoff = 50 * time.Millisecond

// tx runs fn in a write transaction, committing when fn returns nil and re-running it when the
// database reports a deadlock or lock timeout.
func (s *Store) tx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tx1(ctx, fn)
		if err == nil {
			return nil
		}
		if attempt < maxTxAttempts && s.d.IsRetryable(err) && ctx.Err() == nil {
			s.log.Debug("store: retrying transaction", "op", what, "attempt", attempt, "err", err)
			if err := pause(ctx, attempt); err != nil {
				return s.errf(what, err)
			}
			continue
		}
		if isSentinel(err) {
			return err
		}
		return s.errf(what, err)
	}
}

// pause waits a random time up to attempt × retryBackoff/maxTxAttempts, or until ctx ends.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(retryBackoff)*int64(attempt)/maxTxAttempts) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Store) tx1(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// isSentinel reports whether err already carries one of the contract's sentinels.
func isSentinel(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) ||
		errors.Is(err, store.ErrFidInUse) || errors.Is(err, store.ErrLocked)
}

// errf wraps a database failure with the dialect name and the operation.
func (s *Store) errf(what string, err error) error {
	return fmt.Errorf("%s: %s: %w", s.name, what, err)
}

// notFound returns an ErrNotFound naming what is missing.
func (s *Store) notFound(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", s.name, fmt.Sprintf(format, args...), store.ErrNotFound)
}

// exists returns an ErrExists naming what clashed.
func (s *Store) exists(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", s.name, fmt.Sprintf(format, args...), store.ErrExists)
}

// checkKey enforces the contract's key length.
func (s *Store) checkKey(key string) error {
	if len(key) > store.MaxKeyLen {
		return fmt.Errorf("%s: key of %d bytes is longer than %d", s.name, len(key), store.MaxKeyLen)
	}
	return nil
}

// execOne runs a write statement and returns ErrNotFound (from nf) when it touched no row.
func execOne(ctx context.Context, ex execer, nf func() error, query string, args ...any) error {
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return nf()
	}
	return nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner = interface{ Scan(...any) error }

// queryAll runs a read query and scans every row it returns with scan. Errors are wrapped with what.
func queryAll[T any](ctx context.Context, s *Store, what string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.errf(what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.errf(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(what, err)
	}
	return out, nil
}

// scanOne scans a row of a single column.
func scanOne[T any](sc rowScanner) (T, error) {
	var v T
	err := sc.Scan(&v)
	return v, err
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// nullInt maps 0 to SQL NULL, as the schema does for optional ids and ports.
func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// nullStr maps "" to SQL NULL: several optional text columns are UNIQUE, and NULLs never clash.
func nullStr(v string) any {
	if v == "" {
		return nil
	}
	return v
}
