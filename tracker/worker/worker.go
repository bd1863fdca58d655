// Package worker runs the tracker's background jobs against the metadata store and the storage nodes:
// the device monitor, replication (MultipleHosts policy), deletion, the dead-device reaper, the stale
// upload reaper and fsck.
//
// Several trackers may run Workers on one database. They cooperate only through the store: queue rows
// are leased with Store.Claim, so two trackers never work on one row at once, and per-fid work runs
// under the MogileFS named locks (mgfs:fid:<fid>:replicate, mgfs:reaper, mgfs:tempfiles,
// mgfs:device_update). A tracker that dies mid-job loses nothing: its leased rows come due again when
// the lease runs out.
//
// Its configuration is the `workers:` sub-section of the tracker section:
//
//	tracker:
//	  workers:
//	    monitor_interval: 2500ms
//	    poll_interval: 1s
//	    replicate_workers: 2
//	    delete_workers: 2
//	    min_free_space: 100MiB
//	    reap_delay: 16s
//	    tempfile_max_age: 1h
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// jobReleaser is what release asks of the store.
type jobReleaser interface {
	Retry(ctx context.Context, q store.Queue, j store.Job) error
}

// Observer receives the monitor's findings, one call per monitored device per round. The tracker's
// state cache implements it. Observe is called from the monitor goroutines, possibly concurrently for
// devices of different hosts, and must not block for long.
type Observer interface {
	Observe(devID int, o Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(devID int, o Observation)

// Observe calls f(devID, o).
func (f ObserverFunc) Observe(devID int, o Observation) { f(devID, o) }

// Observation is what one monitor round found out about a device.
type Observation struct {
	// Reachable reports that the device's usage file could be fetched (observed_state readable).
	Reachable bool
	// Writable reports that the last test write read back identical bytes (observed_state writeable).
	// It implies Reachable.
	Writable bool
	// MBTotal and MBUsed come from the usage file, in MiB; both are 0 when it could not be read.
	MBTotal, MBUsed int64
	// At is when the observation was made.
	At time.Time
	// Err says why the device is not reachable or not writable; "" when it is writable.
	Err string
	// RejectBadMD5 reports that the node refused a PUT whose Content-MD5 did not match (get_devices
	// reject_bad_md5). Only meaningful when Writable.
	RejectBadMD5 bool
}

// Worker names accepted by Kick and used as keys of Jobs.
const (
	JobMonitor   = "monitor"
	JobReplicate = "replicate"
	JobDelete    = "delete"
	JobReaper    = "reaper"
	JobTempfiles = "tempfiles"
	JobFsck      = "fsck"
	JobRebalance = "rebalance"
)

var jobNames = []string{JobMonitor, JobReplicate, JobDelete, JobReaper, JobTempfiles, JobFsck, JobRebalance}

// JobInfo describes one worker for the tracker's `!jobs` command.
type JobInfo struct {
	// Desired is the number of goroutines the worker runs when started; Count those running now.
	Desired, Count int
	// Runs counts completed passes; LastRun is the end of the last one (zero before the first).
	Runs    uint64
	LastRun time.Time
	// LastErr is the error of the last failed pass, "" when it succeeded.
	LastErr string
}

// jobClaimer is the part of the store every queue-driven worker uses: claim due rows, finish
// them, reschedule them.
type jobClaimer interface {
	Claim(ctx context.Context, q store.Queue, now int64, lease time.Duration, limit int) ([]store.Job, error)
	Done(ctx context.Context, q store.Queue, fid int64) error
	Retry(ctx context.Context, q store.Queue, j store.Job) error
}

// claim takes up to BatchSize due rows of q from c under the configured lease; what names the
// queue in the error.
func (w *Workers) claim(ctx context.Context, c jobClaimer, q store.Queue, what string) ([]store.Job, error) {
	jobs, err := c.Claim(ctx, q, w.unix(), w.cfg.Lease.D(), w.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", what, err)
	}
	return jobs, nil
}

// copyLister is how a worker finds a fid's file row and the devices holding its copies.
type copyLister interface {
	FileByFid(ctx context.Context, fid int64) (store.File, error)
	FileOn(ctx context.Context, fid int64) ([]int, error)
}

// Store is what the workers need from the metadata store: the union of the interfaces each worker
// declares next to its code. A store.Store has all of it.
type Store interface {
	viewLoader
	jobReleaser
	usageRecorder
	fidForgetter
	replicaRecorder
	copyMover
	fsckChecker
	deviceReaper
}

// A store.Store is everything the workers need.
var _ Store = store.Store(nil)

// Workers owns the background goroutines of one tracker. Its methods are safe for concurrent use.
type Workers struct {
	cfg Config
	// The store, once for each worker, typed by the interface that worker declares next to its
	// code: a worker reaches only what it declares.
	views    viewLoader
	queue    jobReleaser
	usage    usageRecorder
	deletes  fidForgetter
	replicas replicaRecorder
	moves    copyMover
	checks   fsckChecker
	reaps    deviceReaper
	obs      Observer
	log      *slog.Logger
	node     *node.Client // requests to storage nodes

	// The clock and randomness, as fields so that a test can pin them before Run.
	now       func() time.Time
	randFloat func() float64
	randN     func(n int) int

	kicks       map[string]chan struct{}
	monitorDone chan struct{}
	doneOnce    sync.Once
	running     atomic.Bool

	mu            sync.Mutex          // guards the fields below
	state         map[int]*devState   // devid -> monitor state
	jobs          map[string]*JobInfo // name -> info
	round         chan struct{}       // closed and replaced after every monitor round
	roundsStarted uint64              // monitor rounds begun
	roundsDone    uint64              // monitor rounds finished
	dead          map[int]time.Time   // devid -> first seen dead by the reaper

	stats counters
}

// New returns Workers for the store st. obs may be nil when nobody needs the observations; log nil
// discards logs. Nothing starts until Run.
func New(cfg Config, st Store, obs Observer, log *slog.Logger) (*Workers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if st == nil {
		return nil, fmt.Errorf("worker: nil store")
	}
	if obs == nil {
		obs = ObserverFunc(func(int, Observation) {})
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	w := &Workers{
		cfg:         cfg,
		views:       st,
		queue:       st,
		usage:       st,
		deletes:     st,
		replicas:    st,
		moves:       st,
		checks:      st,
		reaps:       st,
		obs:         obs,
		log:         log,
		now:         time.Now,
		randFloat:   rand.Float64,
		randN:       rand.IntN,
		kicks:       make(map[string]chan struct{}, len(jobNames)),
		monitorDone: make(chan struct{}),
		state:       make(map[int]*devState),
		jobs:        make(map[string]*JobInfo, len(jobNames)),
		round:       make(chan struct{}),
		dead:        make(map[int]time.Time),
	}
	for _, n := range jobNames {
		w.kicks[n] = make(chan struct{}, 1)
		w.jobs[n] = &JobInfo{Desired: 1}
	}
	w.jobs[JobReplicate].Desired = cfg.ReplicateWorkers
	w.jobs[JobDelete].Desired = cfg.DeleteWorkers
	w.node = node.New(node.Config{
		Timeout:           cfg.NodeTimeout.D(),
		TransferTimeout:   cfg.CopyTimeout.D(),
		SidePort:          cfg.SideChannelPort,
		IdleConns:         cfg.MonitorConcurrency * 2,
		TransferIdleConns: cfg.ReplicateWorkers * 2,
	})
	return w, nil
}

// Run starts every worker and returns after ctx is done and all of them have stopped. Like the Perl
// tracker, only the monitor starts at once; the others start after the first full monitor round, so
// they never act on devices whose state is still unknown. Run may be called once.
func (w *Workers) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return fmt.Errorf("worker: Run called twice")
	}
	defer w.node.Close()
	var wg sync.WaitGroup
	start := func(name string, every time.Duration, pass func(context.Context) (more bool, err error)) {
		wg.Go(func() { w.loop(ctx, name, every, pass) })
	}
	start(JobMonitor, w.cfg.MonitorInterval.D(), w.monitorPass)
	select {
	case <-w.monitorDone:
	case <-ctx.Done():
	}
	if ctx.Err() == nil {
		start(JobReplicate, w.cfg.PollInterval.D(), w.replicatePass)
		start(JobDelete, w.cfg.PollInterval.D(), w.deletePass)
		start(JobReaper, w.cfg.ReaperInterval.D(), w.reaperPass)
		start(JobTempfiles, w.cfg.TempfileInterval.D(), w.tempfilePass)
		start(JobFsck, w.cfg.PollInterval.D(), w.fsckPass)
		start(JobRebalance, w.cfg.PollInterval.D(), w.rebalancePass)
	}
	wg.Wait()
	return nil
}

// loop runs pass every interval, at once when kicked, and again straight away while it reports more
// work. A panic in a pass is logged and the loop carries on.
func (w *Workers) loop(ctx context.Context, name string, every time.Duration, pass func(context.Context) (bool, error)) {
	// A loop runs Desired passes' worth of goroutines (the replicate and delete fan-out), so that is
	// what !jobs shows as running while the loop is up.
	w.mu.Lock()
	n := w.jobs[name].Desired
	w.jobs[name].Count += n
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.jobs[name].Count -= n
		w.mu.Unlock()
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kicks[name]:
		}
		more, err := w.safePass(ctx, name, pass)
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		ji := w.jobs[name]
		ji.Runs++
		ji.LastRun = w.now()
		ji.LastErr = ""
		if err != nil {
			ji.LastErr = err.Error()
		}
		w.mu.Unlock()
		if err != nil {
			w.log.Warn("worker pass failed", "job", name, "err", err)
		}
		next := every
		if more && err == nil {
			next = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

func (w *Workers) safePass(ctx context.Context, name string, pass func(context.Context) (bool, error)) (more bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.stats.panics.Add(1)
			w.log.Error("worker panic", "job", name, "panic", r, "stack", string(debug.Stack()))
			more, err = false, fmt.Errorf("panic: %v", r)
		}
	}()
	return pass(ctx)
}

// Kick wakes the named worker (JobMonitor, JobReplicate, JobDelete, JobReaper, JobTempfiles, JobFsck,
// JobRebalance) now instead of at its next interval. Unknown names are ignored. It never blocks.
func (w *Workers) Kick(name string) {
	ch, ok := w.kicks[name]
	if !ok {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// MonitorDone returns a channel closed after the first full monitor round.
func (w *Workers) MonitorDone() <-chan struct{} { return w.monitorDone }

// MonitorRound forces a monitor round and waits until a round that started after the call has
// finished (clear_cache), or until ctx is done. It needs Run to be running.
func (w *Workers) MonitorRound(ctx context.Context) error {
	w.mu.Lock()
	target := w.roundsStarted + 1
	w.mu.Unlock()
	for {
		w.Kick(JobMonitor)
		w.mu.Lock()
		done, ch := w.roundsDone, w.round
		w.mu.Unlock()
		if done >= target {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Jobs describes each worker, keyed by JobMonitor, JobReplicate and the other job names.
func (w *Workers) Jobs() map[string]JobInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]JobInfo, len(w.jobs))
	for k, v := range w.jobs {
		m[k] = *v
	}
	return m
}

// Observed returns the monitor's latest observation of devID and whether there is one.
func (w *Workers) Observed(devID int) (Observation, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.state[devID]
	if !ok || s.obs.At.IsZero() {
		return Observation{}, false
	}
	return s.obs, true
}

// jitter returns d scaled by a random factor in [0.8, 1.2).
func (w *Workers) jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*w.randFloat()))
}

func (w *Workers) unix() int64 { return w.now().Unix() }

// release gives back a claimed row that was not worked on because the workers are stopping, so
// another tracker (or this one after a restart) picks it up at once instead of after the lease.
func (w *Workers) release(ctx context.Context, q store.Queue, j store.Job) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.NodeTimeout.D())
	defer cancel()
	j.NextTry = w.unix() // Claim returned the leased time
	if err := w.queue.Retry(ctx, q, j); err != nil && !errors.Is(err, store.ErrNotFound) {
		w.log.Warn("could not release a claimed row; it comes back after the lease", "queue", int(q), "fid", j.Fid, "err", err)
	}
}
