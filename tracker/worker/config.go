package worker

import (
	"cmp"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// Defaults applied to zero Config fields. They follow the Perl tracker (MogileFS-Server 2.73).
const (
	DefaultMonitorInterval     = 2500 * time.Millisecond
	DefaultWriteProbeInterval  = 15 * time.Second
	DefaultUsageUpdateInterval = 15 * time.Second
	DefaultNodeTimeout         = 2 * time.Second
	DefaultCopyTimeout         = 45 * time.Second
	DefaultPollInterval        = time.Second
	DefaultLease               = 1000 * time.Second
	DefaultBatchSize           = 100
	DefaultMonitorConcurrency  = 16
	DefaultReplicateWorkers    = 2
	DefaultDeleteWorkers       = 2
	DefaultMinFreeSpace        = 100 * conf.MiB
	DefaultMinDevCount         = 2
	DefaultReaperInterval      = 5 * time.Second
	DefaultReapDelay           = 16 * time.Second
	DefaultReaperBatch         = 1000
	DefaultTempfileMaxAge      = time.Hour
	DefaultTempfileInterval    = 60 * time.Second
	DefaultFsckBatch           = 100
	DefaultSideChannelPort     = 7501
)

// Config is the `workers:` sub-section of the `tracker:` section. The zero value means every default.
//
//	tracker:
//	  workers:
//	    monitor_interval: 2500ms
//	    replicate_workers: 2
//	    tempfile_max_age: 1h
type Config struct {
	// MonitorInterval is the pause between device monitor rounds. Default 2500ms.
	MonitorInterval conf.Duration `yaml:"monitor_interval"`
	// WriteProbeInterval is how often each device gets a test write; between probes the last result
	// stands. Default 15s.
	WriteProbeInterval conf.Duration `yaml:"write_probe_interval"`
	// UsageUpdateInterval is how often a device's mb_total/mb_used are written to the database.
	// Default 15s.
	UsageUpdateInterval conf.Duration `yaml:"usage_update_interval"`
	// NodeTimeout bounds connecting to a storage node and waiting for its reply to a monitor probe,
	// HEAD or DELETE. Default 2s.
	NodeTimeout conf.Duration `yaml:"node_timeout"`
	// CopyTimeout is the longest silence tolerated on a replication or fsck transfer. Default 45s.
	CopyTimeout conf.Duration `yaml:"copy_timeout"`
	// PollInterval is how often the replicate, delete and fsck workers look for due work when idle.
	// Default 1s.
	PollInterval conf.Duration `yaml:"poll_interval"`
	// Lease is how long a claimed queue row stays hidden from other trackers; rows of a tracker that
	// dies mid-job come due again after it. Default 1000s.
	Lease conf.Duration `yaml:"lease"`
	// BatchSize is the number of queue rows claimed at once. Default 100.
	BatchSize int `yaml:"batch_size"`
	// MonitorConcurrency is the number of storage hosts probed at once. Default 16.
	MonitorConcurrency int `yaml:"monitor_concurrency"`
	// ReplicateWorkers is the number of fids replicated at once. Default 2.
	ReplicateWorkers int `yaml:"replicate_workers"`
	// DeleteWorkers is the number of fids deleted at once. Default 2.
	DeleteWorkers int `yaml:"delete_workers"`
	// MinFreeSpace is the free space a device needs to receive replicas. Default 100MiB.
	MinFreeSpace conf.Size `yaml:"min_free_space"`
	// DefaultMinDevCount is the mindevcount of a domain's default class when it has no row.
	// Default 2.
	DefaultMinDevCount int `yaml:"default_mindevcount"`
	// ReaperInterval is how often the reaper looks for dead devices. Default 5s.
	ReaperInterval conf.Duration `yaml:"reaper_interval"`
	// ReapDelay is how long a device must have been seen dead before its copies are re-replicated.
	// Default 16s.
	ReapDelay conf.Duration `yaml:"reap_delay"`
	// ReaperBatch is the most fids taken off a dead device per reaper pass. Default 1000.
	ReaperBatch int `yaml:"reaper_batch"`
	// TempfileMaxAge is the age at which an upload that was opened but never closed is reaped and its
	// copies deleted. Default 1h.
	TempfileMaxAge conf.Duration `yaml:"tempfile_max_age"`
	// TempfileInterval is how often stale uploads are looked for. Default 60s.
	TempfileInterval conf.Duration `yaml:"tempfile_interval"`
	// FsckBatch is the number of fids fsck checks before it records its progress. Default 100.
	FsckBatch int `yaml:"fsck_batch"`
	// SideChannelPort is the storage nodes' management port, asked for MD5/SHA-1 digests during
	// replication checks and fsck (mogstored_stream_port); when it does not answer the file is read
	// over HTTP instead. Default 7501; -1 always reads over HTTP.
	SideChannelPort int `yaml:"side_channel_port"`
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	c.MonitorInterval = conf.Duration(c.MonitorInterval.Or(DefaultMonitorInterval))
	c.WriteProbeInterval = conf.Duration(c.WriteProbeInterval.Or(DefaultWriteProbeInterval))
	c.UsageUpdateInterval = conf.Duration(c.UsageUpdateInterval.Or(DefaultUsageUpdateInterval))
	c.NodeTimeout = conf.Duration(c.NodeTimeout.Or(DefaultNodeTimeout))
	c.CopyTimeout = conf.Duration(c.CopyTimeout.Or(DefaultCopyTimeout))
	c.PollInterval = conf.Duration(c.PollInterval.Or(DefaultPollInterval))
	c.Lease = conf.Duration(c.Lease.Or(DefaultLease))
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.MonitorConcurrency = cmp.Or(c.MonitorConcurrency, DefaultMonitorConcurrency)
	c.ReplicateWorkers = cmp.Or(c.ReplicateWorkers, DefaultReplicateWorkers)
	c.DeleteWorkers = cmp.Or(c.DeleteWorkers, DefaultDeleteWorkers)
	c.MinFreeSpace = c.MinFreeSpace.Or(DefaultMinFreeSpace)
	c.DefaultMinDevCount = cmp.Or(c.DefaultMinDevCount, DefaultMinDevCount)
	c.ReaperInterval = conf.Duration(c.ReaperInterval.Or(DefaultReaperInterval))
	c.ReapDelay = conf.Duration(c.ReapDelay.Or(DefaultReapDelay))
	c.ReaperBatch = cmp.Or(c.ReaperBatch, DefaultReaperBatch)
	c.TempfileMaxAge = conf.Duration(c.TempfileMaxAge.Or(DefaultTempfileMaxAge))
	c.TempfileInterval = conf.Duration(c.TempfileInterval.Or(DefaultTempfileInterval))
	c.FsckBatch = cmp.Or(c.FsckBatch, DefaultFsckBatch)
	c.SideChannelPort = cmp.Or(c.SideChannelPort, DefaultSideChannelPort)
	return c
}

// Validate checks the section; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	d := c.withDefaults()
	var p conf.Problems
	p.AtLeast("monitor_interval", d.MonitorInterval, 10*time.Millisecond, "write 10ms or more (the Perl tracker uses 2500ms)")
	p.AtLeast("write_probe_interval", d.WriteProbeInterval, 10*time.Millisecond, "write 10ms or more (default 15s)")
	p.AtLeast("usage_update_interval", d.UsageUpdateInterval, 10*time.Millisecond, "write 10ms or more (default 15s)")
	p.AtLeast("node_timeout", d.NodeTimeout, 10*time.Millisecond, "write 10ms or more (default 2s)")
	p.AtLeast("copy_timeout", d.CopyTimeout, 100*time.Millisecond, "write 100ms or more (default 45s)")
	p.AtLeast("poll_interval", d.PollInterval, 10*time.Millisecond, "write 10ms or more (default 1s)")
	p.AtLeast("lease", d.Lease, time.Second, "write 1s or more (default 1000s); it must outlast one job")
	p.AtLeast("reaper_interval", d.ReaperInterval, 10*time.Millisecond, "write 10ms or more (default 5s)")
	p.AtLeast("tempfile_max_age", d.TempfileMaxAge, time.Second, "write 1s or more (default 1h); uploads still running must not be reaped")
	p.AtLeast("tempfile_interval", d.TempfileInterval, 10*time.Millisecond, "write 10ms or more (default 60s)")
	p.NotNegative("batch_size", d.BatchSize, "write a positive number or leave it out (default 100)")
	p.NotNegative("monitor_concurrency", d.MonitorConcurrency, "write a positive number or leave it out (default 16)")
	p.NotNegative("replicate_workers", d.ReplicateWorkers, "write a positive number or leave it out (default 2)")
	p.NotNegative("delete_workers", d.DeleteWorkers, "write a positive number or leave it out (default 2)")
	p.NotNegative("reaper_batch", d.ReaperBatch, "write a positive number or leave it out (default 1000)")
	p.NotNegative("fsck_batch", d.FsckBatch, "write a positive number or leave it out (default 100)")
	if d.DefaultMinDevCount < 1 || d.DefaultMinDevCount > 255 {
		p.Add("default_mindevcount", "write a number from 1 to 255 (default 2)", "%d is out of range", d.DefaultMinDevCount)
	}
	if d.SideChannelPort < -1 || d.SideChannelPort > 65535 {
		p.Add("side_channel_port", "write a TCP port (default 7501), or -1 to read files over HTTP", "%d is out of range", d.SideChannelPort)
	}
	if d.MinFreeSpace < 0 {
		p.Add("min_free_space", "write a size such as 100MiB", "must not be negative")
	}
	if d.Lease.D() <= d.CopyTimeout.D() {
		p.Add("lease", "make lease longer than copy_timeout",
			"%s does not outlast copy_timeout %s, so a slow copy could be claimed twice", d.Lease, d.CopyTimeout)
	}
	return p.Err()
}
