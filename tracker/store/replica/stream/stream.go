// Package stream is the engine behind the tracker's replication (see package replica for its
// configuration): Litestream (github.com/benbjohnson/litestream), embedded as a library, reads the
// SQLite database's write-ahead log, cuts every committed transaction into LTX files and ships them
// to the replica, where they are compacted and periodically snapshotted; Restore rebuilds a database
// from a replica, up to its latest state or to a point in time. It uses the same pure-Go SQLite
// driver as the store (modernc.org/sqlite), so mogway stays free of cgo. It is its own package so
// that what only reads the configuration (the tracker's config check) links none of it.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"

	"github.com/mogway/mogway/tracker/store/replica"
)

// Replicator ships one SQLite database to its replica from background goroutines it owns. Its
// methods are safe for concurrent use.
type Replicator struct {
	to    string
	db    *litestream.DB
	store *litestream.Store
}

// Start begins replicating the SQLite database at path (which must exist, in WAL mode) as cfg
// says, until Close. log nil discards logs.
func Start(ctx context.Context, path string, cfg replica.Config, log *slog.Logger) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("replica: no replica configured (replicate.to)")
	}
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, _ := replica.Dir(cfg.To) // validated
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
	// Litestream opens the database at its first sync, a quarter of the interval after Start,
	// and its Close ships only from a database it has opened: a stop before that first look
	// shipped nothing (TestCloseShipsLastCommits/BeforeFirstShipment). Reading the WAL here
	// first makes the final shipment of store.Close carry every commit.
	syncErr := r.db.Sync(ctx)
	if err := errors.Join(syncErr, r.store.Close(ctx)); err != nil {
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
	dir, err := replica.Dir(from)
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
	dir, err := replica.Dir(from)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(dir))
	return r.TimeBounds(ctx)
}
