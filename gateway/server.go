// Package gateway is the HTTP front of a MogileFS cluster: it replaces nginx with the
// nginx_mogilefs_module (tracker routes) and nginx proxy_pass to upstream groups (upstream routes,
// such as a FastDFS layout) with one fasthttp server.
//
// A tracker route asks the tracker pool for a key's paths (cached briefly, concurrent lookups
// collapsed), then reads the first copy that answers, failing over before the first byte and
// continuing a broken body from another copy with a Range request. An upstream route does the same
// across a group of servers with nginx's max_fails/fail_timeout and proxy_next_upstream rules.
// Tracker routes may also accept PUT (create_open, stream, create_close) and DELETE.
//
// With a cache (package cache), GET and HEAD on routes are answered from it (cache.go): one fill per
// key runs the same failover fetch and feeds every client at once. With purge (package purge), requests
// under the purge path go to the purge service, and PUT and DELETE through a route purge what they
// replaced.
//
// The gateway's configuration section:
//
//	gateway:
//	  listen: ":80"
//	  trackers: ["10.0.0.1:7001", "10.0.0.2:7001"]
//	  cache:
//	    memory: 256MiB
//	    disk: {path: /var/cache/mogway, max_size: 10GiB}
//	  purge:
//	    allow: [127.0.0.1/32]
//	  routes:
//	    - prefix: /download/
//	      domain: photos
//	    - prefix: /group1/M00/
//	      servers: [{addr: "10.0.0.5:8888"}, {addr: "10.0.0.6:8888"}]
//
// docs/gateway.md documents every key.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/httpconn"
	"github.com/mogway/mogway/purge"
)

// Deps are the gateway's dependencies besides its configuration.
type Deps struct {
	// Tracker answers tracker routes. Nil: the gateway builds a tracker pool from Config.Trackers and
	// rebuilds it when a reload changes them; a Tracker passed here is kept across reloads and never
	// closed by the gateway.
	Tracker Tracker
	// AccessLog, when set, receives the access log instead of Config.AccessLog.
	AccessLog io.Writer
	// Now is the clock of passive health checks, the path cache and the access log. Nil: time.Now.
	Now func() time.Time
}

// Server is a gateway. Its methods are safe for concurrent use. Create it with New, run it with
// Serve, and change its routes with Reload.
type Server struct {
	log   *slog.Logger
	deps  Deps
	now   func() time.Time
	nodes *nodes
	stats counters

	state atomic.Pointer[state]
	alog  atomic.Pointer[accessLog]
	conns atomic.Pointer[httpconn.Tracker] // client connections, set by Serve

	reloadMu sync.Mutex // serialises Reload
	started  time.Time

	metrics   gatewayMetrics
	cache     *cache.Cache   // nil without Config.Cache
	purger    *purge.Service // nil without Config.Purge
	closeOnce sync.Once
}

// state is one configuration in force. Requests hold a reference while they use its tracker, so a
// reload can close a tracker pool it replaced once the last request using it is done.
type state struct {
	cfg         Config // with defaults
	table       *table
	tracker     Tracker
	ownTracker  io.Closer // a pool the gateway built, closed when the state retires
	paths       *pathCache
	statusAllow []netip.Prefix
	trusted     []netip.Prefix // real_ip.trusted_proxies
	budget      time.Duration  // bound of one tracker command across every tracker

	refs      atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
}

func (st *state) release() {
	if st.refs.Add(-1) == 0 && st.retired.Load() {
		st.close()
	}
}

func (st *state) retire() {
	st.retired.Store(true)
	if st.refs.Load() == 0 {
		st.close()
	}
}

func (st *state) close() {
	st.closeOnce.Do(func() {
		if st.ownTracker != nil {
			st.ownTracker.Close() //nolint:errcheck // only idle connections are closed
		}
	})
}

// New validates cfg and builds a gateway. It binds nothing: Serve takes a listener.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, deps: deps, now: deps.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.initMetrics()
	d := cfg.withDefaults()
	s.nodes = newNodes(nodeOptions{connect: d.Timeouts.StorageConnect.D(), idle: d.Timeouts.StorageIdle.D(),
		maxConns: d.Limits.MaxConnsPerNode, serverHdr: d.ServerName})
	if err := s.openCache(d, deps); err != nil {
		return nil, err
	}
	st, err := s.build(d, nil)
	if err != nil {
		s.Close() //nolint:errcheck // the build error is the one to report
		return nil, err
	}
	al, err := openAccessLog(d.AccessLog, deps.AccessLog, s.now)
	if err != nil {
		st.close()
		s.Close() //nolint:errcheck // the access log error is the one to report
		return nil, fmt.Errorf("gateway: access_log: %w", err)
	}
	s.alog.Store(al)
	s.state.Store(st)
	s.started = s.now()
	return s, nil
}

// build compiles a configuration (with defaults). prev, when given, lends its tracker pool and path
// cache if the trackers did not change.
func (s *Server) build(cfg Config, prev *state) (*state, error) {
	st := &state{cfg: cfg, table: newTable(cfg.Routes, s.nodes, s.cache != nil),
		statusAllow: parseNets(cfg.StatusAllow), trusted: parseNets(cfg.RealIP.TrustedProxies)}
	s.metrics.bind(st.table)
	n := max(len(cfg.Trackers), 1)
	st.budget = time.Duration(n) * (cfg.Timeouts.TrackerConnect.D() + cfg.Timeouts.TrackerRead.D())
	sameTrackers := prev != nil && slices.Equal(prev.cfg.Trackers, cfg.Trackers) &&
		prev.cfg.Timeouts.TrackerConnect == cfg.Timeouts.TrackerConnect &&
		prev.cfg.Timeouts.TrackerRead == cfg.Timeouts.TrackerRead &&
		prev.cfg.Limits.MaxIdlePerTracker == cfg.Limits.MaxIdlePerTracker &&
		prev.cfg.Limits.MaxConnsPerTracker == cfg.Limits.MaxConnsPerTracker
	switch {
	case s.deps.Tracker != nil:
		st.tracker = s.deps.Tracker
	case sameTrackers:
		st.tracker, st.ownTracker = prev.tracker, prev.ownTracker
	case len(cfg.Trackers) > 0:
		pt, err := newPoolTracker(cfg, s.log, &s.metrics.tracker)
		if err != nil {
			return nil, fmt.Errorf("gateway: tracker pool: %w", err)
		}
		st.tracker, st.ownTracker = pt, pt
	}
	if prev != nil && sameTrackers && prev.cfg.PathCache == cfg.PathCache {
		st.paths = prev.paths
	} else {
		st.paths = newPathCache(cfg.PathCache, s.now)
	}
	return st, nil
}

// acquire returns the state in force with a reference held; release it when done. A state retired
// by a reload is skipped for its successor; the last state, retired when Serve returns, is still
// handed out (its closed pool answers 503) to a request that slipped past the shutdown.
func (s *Server) acquire() *state {
	for {
		st := s.state.Load()
		st.refs.Add(1)
		if !st.retired.Load() || s.state.Load() == st {
			return st
		}
		st.release()
	}
}

// cfgNow is the configuration in force, for settings read outside a request's state.
func (s *Server) cfgNow() *Config { return &s.state.Load().cfg }

// Reload validates cfg and swaps the routing table in atomically: requests in flight finish with the
// configuration they started with, and new requests see the new one. On error the old configuration
// keeps serving. It also reopens a file access log (for logrotate) and applies the purge block's
// access rules and credentials (purge.Service.Reload). Settings of the listener, of the storage
// nodes' connection pools, of the graceful stop, of the cache and the purge service's path, peers
// and journal take effect at the next start; Reload logs which of them differ (the timeouts and
// limits it applies are tagged reload:"applied").
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.state.Load()
	d := cfg.withDefaults()
	st, err := s.build(d, old)
	if err != nil {
		return err
	}
	oldLog := s.alog.Load()
	if s.deps.AccessLog == nil && d.AccessLog != old.cfg.AccessLog {
		al, err := openAccessLog(d.AccessLog, nil, s.now)
		if err != nil {
			if st.ownTracker != old.ownTracker {
				st.close()
			}
			return fmt.Errorf("gateway: access_log: %w", err)
		}
		s.alog.Store(al)
		oldLog.close() //nolint:errcheck // lines already written stay; a failing disk is logged by flush
	} else if err := oldLog.reopen(); err != nil {
		s.log.Error("cannot reopen the access log", "path", d.AccessLog, "err", err)
	}
	if changed := startOnlyChanges(d, old.cfg); len(changed) > 0 {
		s.log.Warn("these settings changed and take effect at the next restart", "settings", strings.Join(changed, ", "))
	}
	if !reflect.DeepEqual(d.Cache, old.cfg.Cache) {
		s.log.Warn("cache changes take effect at the next restart; routes' cache settings apply now")
		// The table was compiled for the cache the gateway runs with, not the one in the new file.
	}
	switch {
	case (d.Purge == nil) != (s.purger == nil):
		s.log.Warn("adding or removing the purge block takes effect at the next restart")
	case s.purger != nil && !reflect.DeepEqual(d.Purge, old.cfg.Purge):
		// Validated with cfg above, so it cannot fail here, after the access log was switched.
		if later, err := s.purger.Reload(*d.Purge); err != nil {
			s.log.Error("purge settings not reloaded", "err", err)
		} else if len(later) > 0 {
			for i, name := range later {
				later[i] = "purge." + name
			}
			s.log.Warn("these settings changed and take effect at the next restart", "settings", strings.Join(later, ", "))
		}
	}
	s.state.Store(st)
	if old.ownTracker != st.ownTracker {
		old.retire()
	}
	s.stats.reloads.Add(1)
	return nil
}

// startOnlyChanges names the settings that differ between cfg and old and take effect only when the
// gateway starts (as in the file: "listen", "timeouts.client_read", ...).
func startOnlyChanges(cfg, old Config) []string {
	var changed []string
	if cfg.Listen != old.Listen {
		changed = append(changed, "listen")
	}
	if cfg.ServerName != old.ServerName {
		changed = append(changed, "server_name")
	}
	for _, sec := range []struct {
		name     string
		cur, was any
	}{{"timeouts", cfg.Timeouts, old.Timeouts}, {"limits", cfg.Limits, old.Limits}} {
		cur, was := reflect.ValueOf(sec.cur), reflect.ValueOf(sec.was)
		for i := range cur.NumField() {
			f := cur.Type().Field(i)
			if f.Tag.Get("reload") != "applied" && cur.Field(i).Interface() != was.Field(i).Interface() {
				tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				changed = append(changed, sec.name+"."+tag)
			}
		}
	}
	return changed
}

// writeBufferSize is the per-connection response buffer, held only while a response is written.
const writeBufferSize = 64 << 10

// Serve answers HTTP on ln until ctx ends, then stops gracefully: it stops accepting, lets requests in
// flight finish within the shutdown timeout and closes the connections of those still running after
// it, flushes the access log and closes the tracker pool it built. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cfg := s.state.Load().cfg
	conns := httpconn.NewTracker(httpconn.Options{Max: cfg.Limits.MaxConnections, Key: "limits.max_connections", Log: s.log,
		CoarseDeadlines: true})
	s.conns.Store(conns)
	srv := &fasthttp.Server{
		Handler:         s.handle,
		ErrorHandler:    s.badRequest,
		ContinueHandler: s.allowContinue,
		HeaderReceived:  s.refuseOversized,
		Name:            cfg.ServerName,
		Concurrency:     2 * cfg.Limits.MaxConnections, // conns enforces max_connections (see below)
		ReadBufferSize:  int(cfg.Limits.MaxHeaderSize),
		// Bodies are copied to the client through this buffer: fasthttp's 4 KiB default costs a
		// write system call per 4 KiB (a 1 MiB cache hit measured 7× slower than nginx in bench/).
		WriteBufferSize:               writeBufferSize,
		ReadTimeout:                   cfg.Timeouts.ClientRead.D(),
		IdleTimeout:                   cfg.Timeouts.KeepAlive.D(),
		MaxRequestBodySize:            64 << 10, // larger bodies stream (StreamRequestBody)
		StreamRequestBody:             true,
		DisableKeepalive:              cfg.Limits.DisableKeepAlive,
		DisablePreParseMultipartForm:  true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.log},
		// conns enforces max_connections, closing idle keep-alive connections to make room.
		// fasthttp still counts a closed one until its goroutine ends, so its own bound (whose
		// refusals name Server.Concurrency, not our key) is set out of the way above.
		ConnState: conns.ConnState,
	}
	flushDone := make(chan struct{})
	flushStop := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-flushStop:
				return
			case <-t.C:
				if err := s.alog.Load().flush(); err != nil {
					s.log.Error("access log write failed", "err", err)
				}
			}
		}
	}()
	purgeDone := make(chan struct{})
	purgeCtx, purgeStop := context.WithCancel(context.Background())
	go func() {
		defer close(purgeDone)
		if s.purger != nil {
			// Delivers journaled purges to peers that missed them; returns when purgeCtx ends.
			if err := s.purger.Run(purgeCtx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("purge delivery stopped", "err", err)
			}
		}
	}()
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(&idleListener{Listener: conns.Listener(ln), read: cfg.Timeouts.ClientRead.D(), write: cfg.Timeouts.ClientWrite.D()})
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown.D())
		if serr := srv.ShutdownWithContext(sctx); serr != nil && !errors.Is(serr, context.DeadlineExceeded) &&
			!errors.Is(serr, net.ErrClosed) {
			err = serr
		}
		cancel()
		// Requests still running after timeouts.shutdown are cut: fasthttp stops waiting for them
		// but leaves their connections open.
		conns.CloseAll()
		// ShutdownWithContext does nothing when fasthttp's Serve has not registered the listener
		// yet (a stop right after the start); Serve would then run forever. Closing the listener
		// ends it in every case.
		ln.Close() //nolint:errcheck // already closed by the shutdown in the usual case
		if serr := <-errc; err == nil && serr != nil && !errors.Is(serr, net.ErrClosed) {
			err = serr
		}
	}
	purgeStop()
	<-purgeDone
	close(flushStop)
	<-flushDone
	if cerr := s.alog.Load().close(); cerr != nil {
		s.log.Error("access log close failed", "err", cerr)
	}
	s.state.Load().retire()
	s.nodes.closeIdle()
	if cerr := s.Close(); cerr != nil {
		s.log.Error("cache close failed", "err", cerr)
	}
	return err
}

// fasthttpLogger sends fasthttp's own messages to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// Close releases what New opened besides listeners: the cache (its disk tier stays for the next
// start). Serve calls it when it returns; call it yourself only for a Server that is never served.
// It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.cache != nil {
			err = s.cache.Close()
		}
	})
	return err
}
