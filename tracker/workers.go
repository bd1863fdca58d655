package tracker

import (
	"context"
	"log/slog"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/store"
)

// workerConfig is the `workers:` sub-section.
type workerConfig struct{}

// Validate checks the sub-section.
func (workerConfig) Validate() error { return nil }

// observation is the monitor's finding about one device.
type observation struct {
	Reachable, Writable bool
	MBTotal, MBUsed     int64
	At                  time.Time
	Err                 string
	RejectBadMD5        bool
}

// jobInfo describes one background worker for !jobs.
type jobInfo struct {
	Desired, Count int
	Runs           uint64
	LastRun        time.Time
	LastErr        string
}

// background is what the server needs of its background workers.
type background interface {
	Run(ctx context.Context) error
	Kick(name string)
	MonitorDone() <-chan struct{}
	MonitorRound(ctx context.Context) error
	Jobs() map[string]jobInfo
}

const (
	jobReplicate = "replicate"
	jobDelete    = "delete"
	jobFsck      = "fsck"
)

// newBackground builds the background workers for cfg.
func newBackground(cfg Config, st store.Store, obs *state, log *slog.Logger) (background, error) {
	_ = conf.Duration(0)
	return idleWorkers{done: closedChan()}, nil
}

type idleWorkers struct{ done chan struct{} }

func (w idleWorkers) Run(ctx context.Context) error        { <-ctx.Done(); return nil }
func (idleWorkers) Kick(string)                            {}
func (w idleWorkers) MonitorDone() <-chan struct{}         { return w.done }
func (idleWorkers) MonitorRound(ctx context.Context) error { return nil }
func (idleWorkers) Jobs() map[string]jobInfo               { return nil }

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
