// Package mysql is the tracker's metadata store on MySQL or MariaDB, through go-sql-driver/mysql.
// Several trackers (Go or Perl MogileFS) may share one database.
//
// Open creates the MogileFS schema (version 17) when the database has none, with byte-exact key
// columns (see schema.go), and records schema_version 17. An existing MogileFS database is used as
// is: no table is altered, so its collation decides how keys compare (legacy latin1 and utf8mb4
// defaults fold case and ignore trailing spaces, as they did for the Perl trackers).
//
// Named locks are MySQL's GET_LOCK, taken on a connection reserved for the holder until unlock,
// under the names MogileFS uses (spec 6.4), so Go and Perl trackers exclude each other. Queue
// claims use compare-and-set leases and work on every MySQL and MariaDB version.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/internal/sqlstore"
)

// Defaults of the options.
const (
	DefaultMaxConns        = 32
	DefaultConnMaxLifetime = 5 * time.Minute
)

// MinSchemaVersion is the oldest MogileFS schema Open accepts on an existing database: version 15
// added the checksum table and class.hashtype, which the store reads.
const MinSchemaVersion = 15

// Option changes how Open sets the store up.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	maxConns int
}

// WithLogger sets the logger for notes such as transaction retries; the default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMaxConns caps the connections the store opens (default DefaultMaxConns). Each lock held
// takes one connection of its own.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// Store is a store.Store on a MySQL or MariaDB database. It is safe for concurrent use; Close
// releases it.
type Store struct {
	*sqlstore.Store
	locks *locker
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named in dsn, a go-sql-driver/mysql DSN such as
// "user:pass@tcp(127.0.0.1:3306)/mogilefs", and creates the schema if it is missing. The store
// forces clientFoundRows=true (an UPDATE that changes nothing still finds its row) and, unless the
// DSN sets sql_mode, a strict sql_mode for its own sessions.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{maxConns: DefaultMaxConns}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.maxConns < 2 {
		o.maxConns = 2
	}
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("mysql: the DSN names no database (want user:pass@tcp(host:port)/dbname)")
	}
	cfg.ClientFoundRows = true
	cfg.ParseTime = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	}
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(o.maxConns)
	db.SetMaxIdleConns(o.maxConns)
	db.SetConnMaxLifetime(DefaultConnMaxLifetime)
	if err := setup(ctx, db, o.logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: %s@%s/%s: %w", cfg.User, cfg.Addr, cfg.DBName, err)
	}
	l := &locker{db: db, log: o.logger}
	s, err := sqlstore.New(ctx, sqlstore.Options{Write: db, Dialect: dialect{}, Lock: l.lock, Logger: o.logger})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: s, locks: l}, nil
}

// Close releases the locks this Store still holds and closes its connections.
func (s *Store) Close() error {
	s.locks.releaseAll()
	return s.Store.Close()
}

// setup creates missing tables and checks the schema version of an existing database.
func setup(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	var n int
	err := db.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'file'").Scan(&n)
	if err != nil {
		return err
	}
	fresh := n == 0
	if !fresh {
		var v sql.NullString
		err := db.QueryRowContext(ctx, "SELECT value FROM server_settings WHERE field = 'schema_version'").Scan(&v)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read schema_version: %w", err)
		}
		ver, _ := strconv.Atoi(v.String)
		if ver < MinSchemaVersion {
			return fmt.Errorf("existing MogileFS schema version %q is older than %d; upgrade it with mogdbsetup first", v.String, MinSchemaVersion)
		}
	}
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if fresh {
		log.Info("mysql: created the MogileFS schema (version 17)")
		if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO server_settings (field, value) VALUES ('schema_version', '17')"); err != nil {
			return err
		}
	}
	return nil
}

// dialect is MySQL's side of sqlstore.
type dialect struct{}

func (dialect) Name() string         { return "mysql" }
func (dialect) InsertIgnore() string { return "INSERT IGNORE" }

// MySQL error numbers the store tells apart.
const (
	erDupEntry            = 1062
	erDupEntryWithKeyName = 1586
	erLockWaitTimeout     = 1205
	erLockDeadlock        = 1213
)

func errNumber(err error) uint16 {
	var e *mysqldrv.MySQLError
	if errors.As(err, &e) {
		return e.Number
	}
	return 0
}

func (dialect) IsDup(err error) bool {
	n := errNumber(err)
	return n == erDupEntry || n == erDupEntryWithKeyName
}

func (dialect) IsRetryable(err error) bool {
	n := errNumber(err)
	return n == erLockDeadlock || n == erLockWaitTimeout
}

// locker implements named locks with GET_LOCK on a connection held until unlock.
type locker struct {
	db  *sql.DB
	log *slog.Logger

	mu   sync.Mutex           // guards held
	held map[*sql.Conn]func() // connections holding a lock, with their unlock functions
}

// releaseAll unlocks every lock still held; Close calls it before closing the pool, which would
// otherwise leave those sessions (and their locks) open until each unlock is called.
func (l *locker) releaseAll() {
	l.mu.Lock()
	var unlocks []func()
	for _, u := range l.held {
		unlocks = append(unlocks, u)
	}
	l.mu.Unlock()
	for _, u := range unlocks {
		u()
	}
}

func (l *locker) lock(ctx context.Context, name string, timeout time.Duration) (func(), error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("mysql: lock %q: %w", name, err)
	}
	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, max(timeout, 0).Seconds()).Scan(&got)
	if err != nil {
		discard(conn)
		return nil, fmt.Errorf("mysql: lock %q: %w", name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		conn.Close()
		return nil, fmt.Errorf("mysql: lock %q: %w", name, store.ErrLocked)
	}
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, conn)
			l.mu.Unlock()
			// A background context: the lock must be released even when the caller's context is done.
			rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var released sql.NullInt64
			if err := conn.QueryRowContext(rctx, "SELECT RELEASE_LOCK(?)", name).Scan(&released); err != nil || released.Int64 != 1 {
				// The session may still hold the lock: never return it to the pool, where GET_LOCK
				// would re-enter it. Closing the session releases the lock server-side.
				l.log.Warn("mysql: releasing lock failed; dropping its connection", "lock", name, "err", err)
				discard(conn)
				return
			}
			conn.Close()
		})
	}
	l.mu.Lock()
	if l.held == nil {
		l.held = map[*sql.Conn]func(){}
	}
	l.held[conn] = unlock
	l.mu.Unlock()
	return unlock, nil
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
