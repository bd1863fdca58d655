// Package storaged is a mogstored-compatible MogileFS storage node: an HTTP server for
// PUT/GET/HEAD/DELETE of files under <docroot>/dev<N>/, a usage file per device rewritten every
// usage_interval, and the line-oriented side channel (size, MD5, SHA-1, watch) on the management
// port. Its configuration is the `storaged:` section of the mogway file (see Config).
//
// Many Servers may run in one process (the test cluster does); they share no state.
package storaged

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/httpconn"
)

// Server is one storage node. Create it with New, run it with Serve; Close stops it abruptly.
// Its methods are safe to call from concurrently running goroutines.
type Server struct {
	cfg  Config // with defaults applied
	log  *slog.Logger
	root docroot // every file operation goes through it, so no request leaves its device
	http *fasthttp.Server
	// conns bounds the open HTTP connections (max_conns) and reads bare-LF request heads.
	conns *httpconn.Tracker

	stats counters

	metrics nodeMetrics

	bufs sync.Pool // *[]byte copy buffers of copyBufSize for PUT bodies and digests

	watchInterval time.Duration // period of the side channel's watch stream; tests shorten it

	mu        sync.Mutex             // guards the fields below
	mgmtConns map[net.Conn]struct{}  // open side-channel connections
	listeners []net.Listener         // listeners handed to Serve
	closed    bool                   // Close was called
	stopLoops context.CancelFunc     // stops the goroutines of Serve
	fsckLocks map[string]*sync.Mutex // per-device lock serialising fsck digests

	wg       sync.WaitGroup // goroutines started by Serve
	requests sync.WaitGroup // HTTP handlers running; Add only under mu while !closed
}

const copyBufSize = 256 << 10

// writeBufferSize is the HTTP write buffer of a connection: a reply of a file up to smallFileSize
// and its headers leave in one write(2). fasthttp's default, 4 KiB, splits even a 4 KiB reply in two.
const writeBufferSize = 20 << 10

// New checks cfg and the docroot and returns a Server ready to Serve. Every dev<N> directory found
// in the docroot must be writable; the docroot may hold no device yet.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	fi, err := os.Stat(cfg.Docroot)
	if err != nil {
		return nil, fmt.Errorf("storaged: docroot: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("storaged: docroot %s is not a directory", cfg.Docroot)
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		root:      newDocroot(cfg.Docroot, cfg.OpenFileValid.D()),
		mgmtConns: map[net.Conn]struct{}{},
		fsckLocks: map[string]*sync.Mutex{},

		watchInterval: watchInterval,
	}
	s.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	s.initMetrics()
	devs, err := s.devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if err := s.probeWritable(d); err != nil {
			return nil, fmt.Errorf("storaged: device %s is not writable: %w", d, err)
		}
	}
	if len(devs) == 0 {
		log.Warn("docroot holds no dev<N> directory yet", "docroot", cfg.Docroot)
	}
	// Coarse deadlines: a kept-alive GET arms no runtime timer for fasthttp's read_timeout,
	// write_timeout and idle_timeout; each may cut a client off up to an eighth of it late.
	s.conns = httpconn.NewTracker(httpconn.Options{Max: cfg.MaxConns, Key: "storaged.max_conns", Log: log,
		CoarseDeadlines: true})
	s.http = &fasthttp.Server{
		Handler: s.serveHTTP,
		Name:    "mogway",
		// s.conns enforces max_conns, closing idle keep-alive connections to make room. fasthttp
		// still counts a closed one until its goroutine ends, so its own bound (whose refusals
		// name Server.Concurrency, not our key) is set out of the way.
		Concurrency:                  2 * cfg.MaxConns,
		ReadBufferSize:               int(cfg.MaxHeaderSize),
		ReadTimeout:                  cfg.ReadTimeout.D(),
		WriteTimeout:                 cfg.WriteTimeout.D(),
		IdleTimeout:                  cfg.IdleTimeout.D(),
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		WriteBufferSize:              writeBufferSize,
		TCPKeepalive:                 true,
		ContinueHandler:              s.allowContinue,
		ConnState:                    s.trackHTTPConn,
		Logger:                       fasthttpLogger{log},
	}
	return s, nil
}

// Serve serves HTTP on httpLn and the side channel on mgmtLn (nil: no side channel) and rewrites
// the usage files, until ctx is done; it then stops gracefully (in-flight requests finish, for at
// most shutdown_timeout) and returns nil. It returns early with an error if
// httpLn fails. Serve owns both listeners and closes them. Call it once; Close afterwards is a no-op.
func (s *Server) Serve(ctx context.Context, httpLn, mgmtLn net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		httpLn.Close()
		if mgmtLn != nil {
			mgmtLn.Close()
		}
		return errors.New("storaged: server is closed")
	}
	s.listeners = append(s.listeners, httpLn)
	if mgmtLn != nil {
		s.listeners = append(s.listeners, mgmtLn)
	}
	loopCtx, stopLoops := context.WithCancel(ctx)
	s.stopLoops = stopLoops
	s.mu.Unlock()
	defer stopLoops()
	// The first usage files exist before the first request is read: a monitor probing a fresh node
	// finds them.
	s.writeUsageAll()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.usageLoop(loopCtx)
	}()
	if mgmtLn != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveMgmt(loopCtx, mgmtLn)
		}()
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Serve(s.conns.Listener(httpLn)) }()
	s.log.Info("storage node serving", "http", httpLn.Addr().String(), "mgmt", addrOf(mgmtLn), "docroot", s.cfg.Docroot)

	var err error
	select {
	case err = <-httpDone:
		if s.isClosed() {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("storaged: http: %w", err)
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.D())
		if serr := s.http.ShutdownWithContext(sctx); serr != nil {
			s.log.Warn("graceful stop timed out; closing busy connections", "err", serr)
			s.conns.CloseAll()
		}
		cancel()
		// fasthttp's Shutdown does nothing if its Serve has not registered the listener yet (the
		// goroutine above may not have run): closing the listener ends that Serve either way.
		httpLn.Close()
		<-httpDone
	}
	stopLoops()
	if mgmtLn != nil {
		mgmtLn.Close()
	}
	s.wg.Wait()
	// From here on the server is closed: late handlers get 503, running ones are waited for.
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.requests.Wait()
	s.root.closeReads()
	s.log.Info("storage node stopped", "http", httpLn.Addr().String())
	return err
}

// Close stops the server abruptly, as a crash would: it closes the listeners and every open
// connection. Serve then returns nil. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	lns := s.listeners
	if s.stopLoops != nil {
		s.stopLoops()
	}
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	s.conns.CloseAll()
	s.closeMgmtConns()
	s.wg.Wait()
	s.requests.Wait() // handlers whose connections were cut clean up their temp files
	s.root.closeReads()
	return nil
}

// enter registers a running handler; it returns false once Close was called.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.requests.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serveHTTP refuses request lines RFC 9112 does not allow (see httpconn.CheckRequestLine) and
// hands the rest to handle.
func (s *Server) serveHTTP(ctx *fasthttp.RequestCtx) {
	if status := httpconn.CheckRequestLine(&ctx.Request.Header); status != 0 {
		s.reply(ctx, status, "")
		ctx.SetConnectionClose()
		return
	}
	s.handle(ctx)
	// A whole answer leaves with the read of the next request (httpconn.HoldAnswer); a file sent
	// with sendfile as it goes.
	httpconn.HoldAnswer(ctx.Conn(), !ctx.Response.IsBodyStream())
}

// trackHTTPConn tells s.conns which connections are idle, and closes one accepted while Close ran.
func (s *Server) trackHTTPConn(c net.Conn, st fasthttp.ConnState) {
	s.conns.ConnState(c, st)
	// StateActive and StateIdle, twice per request, change nothing here: no lock for them.
	if st == fasthttp.StateNew && s.isClosed() {
		c.Close()
	}
}

func (s *Server) closeMgmtConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.mgmtConns {
		c.Close()
	}
}

// allowContinue answers "Expect: 100-continue": bodies over max_body are refused before they are sent.
func (s *Server) allowContinue(h *fasthttp.RequestHeader) bool {
	return int64(h.ContentLength()) <= int64(s.cfg.MaxBody)
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

// fasthttpLogger sends fasthttp's own messages (mostly broken client connections) to debug.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "http")
}

// Stats is a snapshot of a Server's counters since New.
type Stats struct {
	Gets, Heads, Puts, Deletes int64 // requests by method
	Created                    int64 // PUTs that stored a file
	Aborted                    int64 // PUTs refused or failed (bad path, short body, disconnect, bad MD5, I/O error)
	NotFound                   int64 // 404 replies
	BadRequests                int64 // 4xx replies other than 404
	ServerErrors               int64 // 5xx replies
	BytesIn, BytesOut          int64 // body bytes stored by PUT and scheduled for GET replies
	MgmtCommands               int64 // side-channel lines answered
}

type counters struct {
	gets, heads, puts, deletes      atomic.Int64
	created, aborted                atomic.Int64
	notFound, badRequests, srvErrs  atomic.Int64
	bytesIn, bytesOut, mgmtCommands atomic.Int64
	open                            atomic.Int64 // requests in their handler
}

// Stats returns a snapshot of the counters. It is safe to call at any time.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Gets: c.gets.Load(), Heads: c.heads.Load(), Puts: c.puts.Load(), Deletes: c.deletes.Load(),
		Created: c.created.Load(), Aborted: c.aborted.Load(),
		NotFound: c.notFound.Load(), BadRequests: c.badRequests.Load(), ServerErrors: c.srvErrs.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(), MgmtCommands: c.mgmtCommands.Load(),
	}
}
