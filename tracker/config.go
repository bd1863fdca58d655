package tracker

import (
	"cmp"
	"net"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/store/dbaddr"
	"github.com/mogway/mogway/tracker/store/replica"
	"github.com/mogway/mogway/tracker/worker"
)

// Defaults of the `tracker:` section.
const (
	DefaultListen             = ":7001"
	DefaultHTTPListen         = "127.0.0.1:7080"
	DefaultDB                 = "sqlite:/var/lib/mogway/tracker.db"
	DefaultQueryWorkers       = 20
	DefaultMaxLine            = 64 * conf.KiB
	DefaultTempfileMaxAge     = time.Hour
	DefaultNodeTimeout        = 2 * time.Second
	DefaultVerifyHedgeDelay   = 100 * time.Millisecond
	DefaultMinFreeSpace       = 100 * conf.MiB
	DefaultMinDevCount        = 2
	DefaultStartupWait        = 30 * time.Second
	DefaultRefreshInterval    = 4 * time.Second
	DefaultSideChannelPort    = 7501
	maxQueryWorkers           = 500
	minMaxLine                = 1 * conf.KiB
	maxMaxLine                = 64 * conf.MiB
	maxSideChannelPort        = 65535
	defaultWriteTimeout       = 120 * time.Second
	defaultChecksumTimeout    = 30 * time.Second
	recentQueries             = 50
	createOpenMaxDestinations = 3
)

// Config is the `tracker:` section of the mogway YAML file. The zero value means every default.
//
//	tracker:
//	  listen: ":7001"
//	  db: "sqlite:/var/lib/mogway/tracker.db"   # or "mysql://user:pass@tcp(host:3306)/mogilefs"
//	  query_workers: 20
//	  max_line: 64KiB
//	  tempfile_max_age: 1h
//	  node_timeout: 2s
//	  verify_hedge_delay: 100ms
//	  min_free_space: 100MiB
//	  default_mindevcount: 2
//	  allow_shutdown: false
//	  workers: {}            # background workers: monitor, replicate, delete, reaper, fsck
type Config struct {
	// Listen is the TCP address of the client port. Default ":7001".
	Listen string `yaml:"listen"`
	// HTTPListen is the address of the HTTP listener serving the cluster status page at "/" and
	// metrics at "/metrics". Default "127.0.0.1:7080" (loopback only); "off" disables it.
	HTTPListen string `yaml:"http_listen"`
	// DB is the metadata store: "sqlite:PATH" or "mysql://user:pass@tcp(host:port)/db".
	// Default "sqlite:/var/lib/mogway/tracker.db".
	DB string `yaml:"db"`
	// QueryWorkers is how many queries run at once; further queries wait in a queue
	// (`!stats` pending_queries). Default 20, at most 500.
	QueryWorkers int `yaml:"query_workers"`
	// MaxLine is the longest request line accepted; a longer line is answered with
	// `ERR bad_params Request+line+too+long` and skipped. Default 64KiB.
	MaxLine conf.Size `yaml:"max_line"`
	// TempfileMaxAge is how long an upload may stay open (create_open without create_close) before
	// the tempfile reaper discards it. Default 1h.
	TempfileMaxAge conf.Duration `yaml:"tempfile_max_age"`
	// NodeTimeout bounds each HTTP request to a storage node made while answering a query (the
	// create_close size check, get_paths verification). Default 2s.
	NodeTimeout conf.Duration `yaml:"node_timeout"`
	// VerifyHedgeDelay is how long get_paths waits for the storage node of the copy it checks to
	// begin its answer before it checks the next copy too, leaving the first check to finish (or
	// run out of NodeTimeout, which marks the node hung) in the background. A delay of NodeTimeout
	// or more never hedges. Default 100ms.
	VerifyHedgeDelay conf.Duration `yaml:"verify_hedge_delay"`
	// ChecksumTimeout bounds the digest of an uploaded file for create_close checksumverify=1.
	// Default 30s.
	ChecksumTimeout conf.Duration `yaml:"checksum_timeout"`
	// MinFreeSpace is the free space a device needs to get new files. Default 100MiB.
	MinFreeSpace conf.Size `yaml:"min_free_space"`
	// DefaultMinDevCount is the mindevcount of a domain's implicit "default" class. Default 2.
	DefaultMinDevCount int `yaml:"default_mindevcount"`
	// SideChannelPort is the storage nodes' management port, used for MD5/SHA-1 digests
	// (mogstored_stream_port). Default 7501.
	SideChannelPort int `yaml:"side_channel_port"`
	// StartupWait is the longest time queries are held at start-up waiting for the first monitor
	// round; after it they are answered anyway. Default 30s.
	StartupWait conf.Duration `yaml:"startup_wait"`
	// RefreshInterval is how often domains, classes, hosts and devices are reloaded from the
	// database, so changes made through other trackers show up (server settings are read from it
	// by each command that needs them). Default 4s.
	RefreshInterval conf.Duration `yaml:"refresh_interval"`
	// AllowShutdown enables the `!shutdown` admin command. Default false (it is answered with an
	// ERROR line).
	AllowShutdown bool `yaml:"allow_shutdown"`
	// Hostname is recorded as fsck_host when fsck_start runs on this tracker. Default: the
	// machine's host name.
	Hostname string `yaml:"hostname"`
	// Workers configures the background workers (monitor, replicate, delete, reaper, fsck); see
	// package worker for its keys and defaults.
	Workers worker.Config `yaml:"workers"`
	// Replicate streams a SQLite database to a replica as it changes, for point-in-time restore
	// with `mogway tracker restore --from URL`; see package replica for its keys. Default off.
	// MySQL/MariaDB databases use the server's own replication instead.
	Replicate replica.Config `yaml:"replicate"`
}

// Validate checks the section; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	var p conf.Problems
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			p.Add("listen", `write host:port or ":port", e.g. ":7001"`, "invalid address %q", c.Listen)
		}
	}
	if c.HTTPListen != "" && c.HTTPListen != HTTPOff {
		if _, _, err := net.SplitHostPort(c.HTTPListen); err != nil {
			p.Add("http_listen", `write host:port, e.g. "127.0.0.1:7080", or "off"`, "invalid address %q", c.HTTPListen)
		}
	}
	if c.DB != "" {
		if _, err := dbaddr.Parse(c.DB); err != nil {
			p.Add("db", "", "%v", err)
		}
	}
	if c.QueryWorkers < 0 || c.QueryWorkers > maxQueryWorkers {
		p.Add("query_workers", "write a number from 1 to 500 (0 means 20)", "%d is out of range", c.QueryWorkers)
	}
	if c.MaxLine != 0 && (c.MaxLine < minMaxLine || c.MaxLine > maxMaxLine) {
		p.Add("max_line", "write a size from 1KiB to 64MiB", "%s is out of range", c.MaxLine)
	}
	if c.DefaultMinDevCount < 0 || c.DefaultMinDevCount > 255 {
		p.Add("default_mindevcount", "write a number from 1 to 255 (0 means 2)", "%d is out of range", c.DefaultMinDevCount)
	}
	if c.SideChannelPort < 0 || c.SideChannelPort > maxSideChannelPort {
		p.Add("side_channel_port", "write a TCP port (0 means 7501)", "%d is out of range", c.SideChannelPort)
	}
	if c.TempfileMaxAge != 0 && c.TempfileMaxAge.D() < time.Minute {
		p.Add("tempfile_max_age", "write at least 1m (default 1h)", "%s is too short for an upload to finish", c.TempfileMaxAge)
	}
	if c.NodeTimeout != 0 && c.NodeTimeout.D() < 10*time.Millisecond {
		p.Add("node_timeout", "write 10ms or more (default 2s)", "%s is too short for a storage node to answer", c.NodeTimeout)
	}
	if c.VerifyHedgeDelay != 0 && c.VerifyHedgeDelay.D() < time.Millisecond {
		p.Add("verify_hedge_delay", "write 1ms or more (default 100ms); node_timeout or more turns hedging off", "%s is shorter than a storage node's answer", c.VerifyHedgeDelay)
	}
	if c.ChecksumTimeout != 0 && c.ChecksumTimeout.D() < 10*time.Millisecond {
		p.Add("checksum_timeout", "write 10ms or more (default 30s)", "%s is too short for a storage node to hash a file", c.ChecksumTimeout)
	}
	p.AddErr(conf.Within("workers", c.Workers.Validate()))
	if err := c.Replicate.Validate(); err != nil {
		p.AddErr(conf.Within("replicate", err))
	} else if c.Replicate.Enabled() {
		if spec, err := dbaddr.Parse(c.DBAddr()); err == nil && spec.Driver != dbaddr.SQLite {
			p.Add("replicate.to", "remove it and replicate the MySQL/MariaDB server instead (docs/ha.md)", "replication is for SQLite databases only")
		}
	}
	return p.Err()
}

// ListenAddr is Listen, or its default ":7001".
func (c *Config) ListenAddr() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

// HTTPOff is the http_listen value that disables the HTTP listener.
const HTTPOff = "off"

// HTTPListenAddr is HTTPListen, or its default "127.0.0.1:7080"; "" when it is "off".
func (c *Config) HTTPListenAddr() string {
	switch c.HTTPListen {
	case "":
		return DefaultHTTPListen
	case HTTPOff:
		return ""
	}
	return c.HTTPListen
}

// DBAddr is DB, or its default "sqlite:/var/lib/mogway/tracker.db".
func (c *Config) DBAddr() string {
	if c.DB == "" {
		return DefaultDB
	}
	return c.DB
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Listen = c.ListenAddr()
	c.DB = c.DBAddr()
	c.QueryWorkers = cmp.Or(c.QueryWorkers, DefaultQueryWorkers)
	c.MaxLine = c.MaxLine.Or(DefaultMaxLine)
	c.TempfileMaxAge = conf.Duration(c.TempfileMaxAge.Or(DefaultTempfileMaxAge))
	c.NodeTimeout = conf.Duration(c.NodeTimeout.Or(DefaultNodeTimeout))
	c.VerifyHedgeDelay = conf.Duration(c.VerifyHedgeDelay.Or(DefaultVerifyHedgeDelay))
	c.ChecksumTimeout = conf.Duration(c.ChecksumTimeout.Or(defaultChecksumTimeout))
	c.MinFreeSpace = c.MinFreeSpace.Or(DefaultMinFreeSpace)
	c.DefaultMinDevCount = cmp.Or(c.DefaultMinDevCount, DefaultMinDevCount)
	c.SideChannelPort = cmp.Or(c.SideChannelPort, DefaultSideChannelPort)
	c.StartupWait = conf.Duration(c.StartupWait.Or(DefaultStartupWait))
	c.RefreshInterval = conf.Duration(c.RefreshInterval.Or(DefaultRefreshInterval))
	return c
}
