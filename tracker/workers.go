package tracker

import (
	"cmp"
	"context"
	"log/slog"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/worker"
)

// The background workers live in package worker; these names keep the seam in this one file.
type (
	observation = worker.Observation
	jobInfo     = worker.JobInfo
)

const (
	jobReplicate = worker.JobReplicate
	jobDelete    = worker.JobDelete
	jobMonitor   = worker.JobMonitor
	jobFsck      = worker.JobFsck
)

// background is what the server needs of its background workers (*worker.Workers).
type background interface {
	Run(ctx context.Context) error
	Kick(name string)
	MonitorDone() <-chan struct{}
	MonitorRound(ctx context.Context) error
	Jobs() map[string]jobInfo
}

var _ background = (*worker.Workers)(nil)

// newBackground builds the background workers. Settings the tracker section and its workers
// sub-section share (tempfile_max_age, node_timeout, min_free_space, default_mindevcount) are taken
// from the tracker section unless the sub-section sets them. cfg has its defaults applied.
func newBackground(cfg Config, st store.Store, obs *state, log *slog.Logger) (background, error) {
	return worker.New(workerConfig(cfg), st, obs, log.With("component", "worker"))
}

// workerConfig is the workers: section with the keys it shares with the tracker section filled in
// from there when the workers section leaves them unset.
func workerConfig(cfg Config) worker.Config {
	wc := cfg.Workers
	wc.SideChannelPort = cmp.Or(wc.SideChannelPort, cfg.SideChannelPort)
	wc.TempfileMaxAge = cmp.Or(wc.TempfileMaxAge, cfg.TempfileMaxAge)
	wc.NodeTimeout = cmp.Or(wc.NodeTimeout, cfg.NodeTimeout)
	wc.MinFreeSpace = cmp.Or(wc.MinFreeSpace, cfg.MinFreeSpace)
	wc.DefaultMinDevCount = cmp.Or(wc.DefaultMinDevCount, cfg.DefaultMinDevCount)
	return wc
}

// idleWorkers stands in for the background workers when they are disabled: no monitor rounds, so
// queries are released at once.
type idleWorkers struct{ done chan struct{} }

func (idleWorkers) Run(ctx context.Context) error          { <-ctx.Done(); return nil }
func (idleWorkers) Kick(string)                            {}
func (w idleWorkers) MonitorDone() <-chan struct{}         { return w.done }
func (idleWorkers) MonitorRound(ctx context.Context) error { return nil }
func (idleWorkers) Jobs() map[string]jobInfo               { return nil }

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
