// Package tracker is the MogileFS-protocol tracker daemon: the client port (one request line in,
// one reply line out, spec section 2), every query command of section 3, the `!` admin commands,
// a cached view of domains, classes, hosts and devices, device selection for uploads and reads, and
// the background workers of package tracker/worker, which it runs.
//
// A Server answers on the listeners given to Serve and keeps its metadata in a store.Store, which
// may be shared with other mogway or Perl trackers. Its configuration is the `tracker:` section (see
// Config).
package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/internal/tick"
	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// Stats is a snapshot of a Server's counters.
type Stats struct {
	// Connections is the number of client connections open now; Accepted counts all ever accepted.
	Connections, Accepted int64
	// Queries counts query lines answered; Errors those answered with ERR.
	Queries, Errors int64
	// Pending is the number of queries waiting for a free query slot; Processing those running.
	Pending, Processing int64
	// OutOfWorkers counts queries that had to wait because every query slot was busy.
	OutOfWorkers int64
	// TooLong counts request lines rejected for exceeding max_line.
	TooLong int64
}

type counters struct {
	conns, accepted, queries, errors, pending, processing, outOfWorkers, tooLong atomic.Int64
}

// Server is a tracker. Its methods are safe for concurrent use. Serve may be called once.
type Server struct {
	cfg Config
	st  store.Store // for Serve and the workers
	// The store as each group of commands sees it, typed by the interface declared with them.
	files     fileCommander
	inventory hostCommander
	misc      miscCommander
	namespace store.Namespace
	log       *slog.Logger
	state     *state
	rand      *lockedRand
	node      *node.Client
	verify    verifier // get_paths' shared HEADs
	hostname  string
	started   time.Time

	// noWorkers disables the background workers (tests that drive observations themselves);
	// testBackground, when set, replaces them.
	noWorkers      bool
	testBackground background
	workers        background
	moreStats      func() []string // extra `!stats` lines; set by AddStats before Serve

	gate     chan struct{} // closed once queries may run (first monitor round or StartupWait)
	gateOnce sync.Once
	slots    chan struct{} // one token per running query

	stopOnce      sync.Once
	stopped       chan struct{}   // closed by Close
	stopCtx       context.Context // the context of queries: cancelled by Close only
	stopCtxCancel context.CancelFunc
	shutdown      context.CancelFunc // ends Serve gracefully (!shutdown); set by Serve

	mu       sync.Mutex // guards the fields below
	serving  bool
	ln       net.Listener
	conns    map[*conn]struct{}
	pending  map[*conn]string // conn -> request line waiting for a slot
	recent   []recentQuery    // ring of the last recentQueries answered queries
	recentAt int
	watchers map[*conn]struct{}
	minFid   int64 // MAX(file.fid) when Serve started: explicit fids at or below it are refused

	stats counters

	metrics trackerMetrics
}

type recentQuery struct {
	ip   string
	line string
	dur  time.Duration
	at   time.Time
}

// New returns a tracker on st. It does not take ownership of st: the caller closes it after Serve
// returns. log nil discards logs.
func New(cfg Config, st store.Store, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	if st == nil {
		return nil, errors.New("tracker: nil store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	s := &Server{
		cfg:       cfg,
		st:        st,
		files:     st,
		inventory: st,
		misc:      st,
		namespace: st,
		log:       log,
		state:     newState(st, cfg.DefaultMinDevCount),
		rand:      &lockedRand{r: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))},
		node: node.New(node.Config{
			Timeout:         cfg.NodeTimeout.D(),
			TransferTimeout: cfg.ChecksumTimeout.D(),
			SidePort:        cfg.SideChannelPort,
			IdleConns:       cfg.QueryWorkers, // one kept connection per query that may verify at once
		}),
		hostname: host,
		started:  time.Now(),
		gate:     make(chan struct{}),
		slots:    make(chan struct{}, cfg.QueryWorkers),
		stopped:  make(chan struct{}),
		conns:    map[*conn]struct{}{},
		pending:  map[*conn]string{},
		recent:   make([]recentQuery, 0, recentQueries),
		watchers: map[*conn]struct{}{},
	}
	s.stopCtx, s.stopCtxCancel = context.WithCancel(context.Background())
	s.verify.init(s.stopCtx, s.node, cfg.VerifyHedgeDelay.D(), s.noteHung, log)
	s.initMetrics()
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:  s.stats.conns.Load(),
		Accepted:     s.stats.accepted.Load(),
		Queries:      s.stats.queries.Load(),
		Errors:       s.stats.errors.Load(),
		Pending:      s.stats.pending.Load(),
		Processing:   s.stats.processing.Load(),
		OutOfWorkers: s.stats.outOfWorkers.Load(),
		TooLong:      s.stats.tooLong.Load(),
	}
}

// Observe records a monitor observation of a device. The background workers call it; tests may
// call it to simulate the monitor.
func (s *Server) Observe(devID int, o Observation) { s.state.Observe(devID, o) }

// Serve answers clients on ln until ctx is done (or `!shutdown`), then stops gracefully: it stops
// accepting, lets each connection finish the request it is running, stops the background workers
// and returns nil. It returns an error when the store cannot be read at start-up. Serve closes ln.
// Close stops it abruptly.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		ln.Close()
		return errors.New("tracker: Serve called twice")
	}
	s.serving = true
	s.ln = ln
	s.mu.Unlock()
	select {
	case <-s.stopped:
		ln.Close()
		return nil
	default:
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.shutdown = cancel
	s.mu.Unlock()

	if err := s.state.reload(ctx); err != nil {
		ln.Close()
		if ctx.Err() != nil || s.isStopped() {
			return nil
		}
		return fmt.Errorf("tracker: %w", err)
	}
	maxFid, err := s.st.MaxFid(ctx)
	if err != nil {
		ln.Close()
		if ctx.Err() != nil || s.isStopped() {
			return nil
		}
		return fmt.Errorf("tracker: read max fid: %w", err)
	}
	s.mu.Lock()
	s.minFid = maxFid
	s.mu.Unlock()

	var bg background = idleWorkers{done: closedChan()}
	switch {
	case s.testBackground != nil:
		bg = s.testBackground
	case !s.noWorkers:
		bg, err = newBackground(s.cfg, s.st, s.state, s.log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tracker: %w", err)
		}
	}
	s.mu.Lock()
	s.workers = bg
	s.mu.Unlock()

	// Background goroutines: workers, the start-up gate, the periodic reload. They stop when bgCtx
	// ends, after the connections have drained.
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	bgWG.Go(func() {
		if err := bg.Run(bgCtx); err != nil {
			s.log.Error("background workers stopped", "err", err)
		}
	})
	bgWG.Go(func() { s.openGate(bgCtx, bg.MonitorDone()) })
	bgWG.Go(func() { s.refreshLoop(bgCtx) })

	// Stop accepting when ctx ends or Close is called.
	var connWG sync.WaitGroup
	go func() {
		select {
		case <-ctx.Done():
		case <-s.stopped:
		}
		ln.Close()
	}()
	s.log.Info("tracker listening", "addr", ln.Addr().String())
	var acceptErr error
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if ctx.Err() == nil && !s.isStopped() {
				acceptErr = fmt.Errorf("tracker: accept: %w", err)
			}
			break
		}
		s.stats.accepted.Add(1)
		c := s.newConn(netx.Raw(nc))
		if c == nil {
			nc.Close()
			continue
		}
		connWG.Go(func() { s.serveConn(ctx, c) })
	}

	// Graceful stop: wake every connection blocked in a read; a connection running a query finishes
	// it and writes the reply first (serveConn checks ctx between requests).
	s.mu.Lock()
	for c := range s.conns {
		c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	connWG.Wait()
	s.verify.stop()
	bgCancel()
	bgWG.Wait()
	s.node.Close()
	s.log.Info("tracker stopped", "addr", ln.Addr().String())
	return acceptErr
}

// Close stops the server abruptly, as a killed tracker would stop: the listener and every client
// connection are closed at once, queries in progress are abandoned (the store keeps only what each
// had committed), and Serve returns once its goroutines have finished.
func (s *Server) Close() error {
	s.stopOnce.Do(func() {
		close(s.stopped)
		s.stopCtxCancel()
		s.mu.Lock()
		if s.ln != nil {
			s.ln.Close()
		}
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
	})
	return nil
}

func (s *Server) isStopped() bool {
	select {
	case <-s.stopped:
		return true
	default:
		return false
	}
}

// openGate releases held queries after the first monitor round, or after StartupWait.
func (s *Server) openGate(ctx context.Context, monitorDone <-chan struct{}) {
	t := time.NewTimer(s.cfg.StartupWait.D())
	defer t.Stop()
	select {
	case <-monitorDone:
	case <-t.C:
		s.log.Warn("no monitor round finished in time; answering queries anyway", "waited", s.cfg.StartupWait.D().String())
	case <-ctx.Done():
	}
	s.gateOnce.Do(func() { close(s.gate) })
}

// refreshLoop reloads the cached tables every RefreshInterval.
func (s *Server) refreshLoop(ctx context.Context) {
	tick.Every(ctx, s.cfg.RefreshInterval.D(), func() bool {
		if err := s.state.reload(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reloading cluster state failed; keeping the previous one", "err", err)
		}
		return true
	})
}

// kick wakes a background worker, if they run.
func (s *Server) kick(name string) {
	if w := s.background(); w != nil {
		w.Kick(name)
	}
}

// noteHung records that host hostID did not answer a request sent at asked within node_timeout
// (state.markHung), and asks the monitor for a round now, which confirms the mark or lifts it.
func (s *Server) noteHung(hostID int, asked time.Time, err error) {
	s.state.markHung(hostID, asked, err)
	s.kick(jobMonitor)
}

func (s *Server) background() background {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workers
}

// fidFloor returns the highest fid that existed when the tracker started.
func (s *Server) fidFloor() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minFid
}

// requestShutdown ends Serve gracefully (the !shutdown command).
func (s *Server) requestShutdown() {
	s.mu.Lock()
	cancel := s.shutdown
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// recordRecent remembers an answered query for !recent.
func (s *Server) recordRecent(q recentQuery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) < recentQueries {
		s.recent = append(s.recent, q)
		return
	}
	s.recent[s.recentAt] = q
	s.recentAt = (s.recentAt + 1) % recentQueries
}

// broadcast sends an error line to every connection that asked for !watch.
func (s *Server) broadcast(msg string) {
	s.mu.Lock()
	ws := make([]*conn, 0, len(s.watchers))
	for c := range s.watchers {
		ws = append(ws, c)
	}
	s.mu.Unlock()
	for _, c := range ws {
		c.writeAsync(":: " + msg + "\r\n")
	}
}
