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
	"fmt"
	"net/url"
	"path/filepath"
	"time"

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
	var p conf.Problems
	if c.To != "" {
		if _, err := Dir(c.To); err != nil {
			p.Add("to", `write "file:///absolute/directory"`, "%v", err)
		}
	}
	if c.Interval != 0 && c.Interval.D() < 100*time.Millisecond {
		p.Add("interval", "write at least 100ms (default 1s)", "%s is too short", c.Interval)
	}
	if c.Retention != 0 && c.Retention.D() < time.Minute {
		p.Add("retention", "write at least 1m (default 24h)", "%s is too short", c.Retention)
	}
	if c.SnapshotInterval != 0 && c.SnapshotInterval.D() < time.Minute {
		p.Add("snapshot_interval", "write at least 1m (default 1h)", "%s is too short", c.SnapshotInterval)
	}
	return p.Err()
}

// WithDefaults is c with every unset duration at its default.
func (c Config) WithDefaults() Config {
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
