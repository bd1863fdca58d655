// Package replica streams the tracker's SQLite database to a replica as it changes, and rebuilds
// the database from that replica, up to its latest state or to a point in time. The engine is
// Litestream (github.com/benbjohnson/litestream), embedded as a library: it reads the database's
// write-ahead log, cuts every committed transaction into LTX files and ships them to the replica,
// where they are compacted and periodically snapshotted. It uses the same pure-Go SQLite driver as
// the store (modernc.org/sqlite), so mogway stays free of cgo.
//
// The tracker section of the config turns it on:
//
//	tracker:
//	  db: "sqlite:/var/lib/mogway/tracker.db"
//	  replicate:
//	    to: "file:///mnt/backup/mogway"   # a directory, ideally on another disk or host
//	    interval: 1s                       # the most a crash may lose; default 1s
//	    retention: 24h                     # how far back point-in-time restore reaches; default 24h
//	    snapshot_interval: 1h              # how often a full snapshot is written; default 1h
//
// Only file:// replicas are built in. A directory on a network file system (NFS, a mounted bucket)
// or synced elsewhere by other tools carries the replica off the machine.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"

	"github.com/mogway/mogway/internal/conf"
)

// Defaults of Config.
const (
	DefaultInterval         = time.Second
	DefaultRetention        = 24 * time.Hour
	DefaultSnapshotInterval = time.Hour
)

// Config is the `tracker.replicate` section. The zero value (no To) replicates nothing.
type Config struct {
	// To is the replica: "file:///absolute/directory". Empty turns replication off.
	To string `yaml:"to"`
	// Interval bounds how old the newest transaction missing from the replica may be: changes
	// are picked up from the WAL and shipped every quarter of it. Default 1s.
	Interval conf.Duration `yaml:"interval"`
	// Retention is how far back point-in-time restore reaches; older history is removed from
	// the replica. Default 24h.
	Retention conf.Duration `yaml:"retention"`
	// SnapshotInterval is how often a full snapshot of the database is written to the replica;
	// a restore replays the changes after the latest snapshot. Default 1h.
	SnapshotInterval conf.Duration `yaml:"snapshot_interval"`
}

// Enabled reports whether c asks for replication.
func (c *Config) Enabled() bool { return c.To != "" }

// Validate checks the section; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	var errs []error
	if c.To != "" {
		if _, err := Dir(c.To); err != nil {
			errs = append(errs, conf.Field("to", `write "file:///absolute/directory"`, "%v", err))
		}
	}
	if c.Interval != 0 && c.Interval.D() < 100*time.Millisecond {
		errs = append(errs, conf.Field("interval", "write at least 100ms (default 1s)", "%s is too short", c.Interval))
	}
	if c.Retention != 0 && c.Retention.D() < time.Minute {
		errs = append(errs, conf.Field("retention", "write at least 1m (default 24h)", "%s is too short", c.Retention))
	}
	if c.SnapshotInterval != 0 && c.SnapshotInterval.D() < time.Minute {
		errs = append(errs, conf.Field("snapshot_interval", "write at least 1m (default 1h)", "%s is too short", c.SnapshotInterval))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = conf.Duration(DefaultInterval)
	}
	if c.Retention == 0 {
		c.Retention = conf.Duration(DefaultRetention)
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = conf.Duration(DefaultSnapshotInterval)
	}
	return c
}

// Dir returns the directory of a "file:///dir" replica URL.
func Dir(to string) (string, error) {
	u, err := url.Parse(to)
	if err != nil {
		return "", fmt.Errorf("replica %q: %w", to, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("replica %q: only file:// replicas are supported", to)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("replica %q: a file URL names no host (file:///dir, three slashes)", to)
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return "", fmt.Errorf("replica %q: the directory must be an absolute path", to)
	}
	return filepath.Clean(u.Path), nil
}

// Replicator ships one SQLite database to its replica from background goroutines it owns. Its
// methods are safe for concurrent use.
type Replicator struct {
	to    string
	db    *litestream.DB
	store *litestream.Store
}

// Start begins replicating the SQLite database at path (which must exist, in WAL mode) as cfg
// says, until Close. log nil discards logs.
func Start(ctx context.Context, path string, cfg Config, log *slog.Logger) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("replica: no replica configured (replicate.to)")
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, _ := Dir(cfg.To) // validated
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	step := cfg.Interval.D() / 4

	db := litestream.NewDB(path)
	client := file.NewReplicaClient(dir)
	client.SetLogger(log)
	r := litestream.NewReplicaWithClient(db, client)
	r.SyncInterval = step
	db.Replica = r
	client.Replica = r
	db.MonitorInterval = step

	levels := litestream.CompactionLevels{
		{Level: 0},
		{Level: 1, Interval: 30 * time.Second},
		{Level: 2, Interval: 5 * time.Minute},
		{Level: 3, Interval: time.Hour},
	}
	st := litestream.NewStore([]*litestream.DB{db}, levels)
	st.Logger = log
	st.SnapshotInterval = cfg.SnapshotInterval.D()
	st.SnapshotRetention = cfg.Retention.D()
	db.SetLogger(log.With("db", filepath.Base(path)))
	if err := st.Open(ctx); err != nil {
		return nil, fmt.Errorf("replica: start replicating %s to %s: %w", path, cfg.To, err)
	}
	return &Replicator{to: cfg.To, db: db, store: st}, nil
}

// Close ships what is left and stops replicating. Call it after the database's last write.
func (r *Replicator) Close(ctx context.Context) error {
	if err := r.store.Close(ctx); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// Sync ships every committed transaction to the replica now and returns when it is there.
func (r *Replicator) Sync(ctx context.Context) error {
	if err := r.db.SyncAndWait(ctx); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// Status is where replication stands.
type Status struct {
	// To is the replica URL.
	To string
	// LocalTXID is the last transaction read from the database's WAL; ReplicaTXID the last one on
	// the replica. They are equal when the replica is up to date.
	LocalTXID, ReplicaTXID uint64
	// LastSync is when the replica last took changes successfully (zero before the first time).
	LastSync time.Time
}

// Lag is how long the replica has been behind at now: zero when it is up to date, else the time
// since the last successful sync.
func (s Status) Lag(now time.Time) time.Duration {
	if s.ReplicaTXID >= s.LocalTXID || s.LastSync.IsZero() {
		return 0
	}
	return now.Sub(s.LastSync)
}

// Status returns where replication stands, without I/O on the replica.
func (r *Replicator) Status() Status {
	st := Status{To: r.to, ReplicaTXID: uint64(r.db.Replica.Pos().TXID), LastSync: r.db.LastSuccessfulSyncAt()}
	if pos, err := r.db.Pos(); err == nil {
		st.LocalTXID = uint64(pos.TXID)
	}
	return st
}

// Restore rebuilds a SQLite database at out (which must not exist) from the replica at from, as
// of its latest transaction, or of the last one at or before at when at is not zero. The result
// passes PRAGMA integrity_check.
func Restore(ctx context.Context, from, out string, at time.Time, log *slog.Logger) error {
	dir, err := Dir(from)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("replica: %s exists already", out)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := file.NewReplicaClient(dir)
	client.SetLogger(log)
	r := litestream.NewReplicaWithClient(nil, client)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	opt.Timestamp = at
	opt.IntegrityCheck = litestream.IntegrityCheckFull
	if err := r.Restore(ctx, opt); err != nil {
		if errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots) {
			return fmt.Errorf("replica: %s holds nothing to restore (at %v): %w", from, at, err)
		}
		return fmt.Errorf("replica: restore from %s: %w", from, err)
	}
	return nil
}

// Bounds returns the time of the oldest and the newest transaction the replica at from holds:
// the range a point-in-time restore can reach.
func Bounds(ctx context.Context, from string) (oldest, newest time.Time, err error) {
	dir, err := Dir(from)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(dir))
	return r.TimeBounds(ctx)
}
