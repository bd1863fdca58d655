package purge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// Service authorises purge requests, applies them to a Target and forwards them to peers. Its
// methods may be called concurrently. Run must be running for peers that missed a purge to get it
// later.
type Service struct {
	cfg    Config // as at New: its path, name, peers and journal settings stay until a restart
	cur    atomic.Pointer[settings]
	target Target
	log    *slog.Logger
	name   string
	now    func() time.Time
	client *http.Client

	peers   []*peer
	byName  map[string]*peer
	journal *journal      // nil without peers
	kick    chan struct{} // wakes Run when a purge is journaled; capacity 1

	stats counters
}

// settings are the configuration in force for what a Reload may change: the access rules, the
// credentials sent to peers, soft, not_found_status and the peers' timeout, concurrency and retry
// delays. A request reads them once.
type settings struct {
	cfg Config
	acl *acl
}

// Option changes a Service built by New.
type Option func(*Service)

// WithClock sets the clock used to check signature expiry (and to sign requests to peers and date
// journal entries); default time.Now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithHTTPClient sets the client used to reach peers (for TLS settings or a custom dialer); default
// a client with its own transport. Per-peer timeouts come from the config, not the client.
func WithHTTPClient(c *http.Client) Option { return func(s *Service) { s.client = c } }

// New validates cfg and returns a Service purging target. With peers configured it creates
// journal_dir if needed and loads the journal left by a previous run. log may be nil.
func New(cfg Config, target Target, log *slog.Logger, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if target == nil {
		return nil, errors.New("purge: nil Target")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := cfg.rules()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:    cfg,
		target: target,
		log:    log,
		name:   cfg.Name,
		now:    time.Now,
		kick:   make(chan struct{}, 1),
		byName: map[string]*peer{},
	}
	s.cur.Store(&settings{cfg: cfg, acl: a})
	for _, o := range opts {
		o(s)
	}
	if s.name == "" {
		if s.name, err = os.Hostname(); err != nil || s.name == "" {
			s.name = "local"
		}
	}
	if s.client == nil {
		s.client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect would turn the PURGE into a GET and invalidate its signature; a peer that
			// redirects is misconfigured (peer_path), which the journal and the log then show.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	for _, p := range cfg.Peers {
		u, _ := peerURL(p) // checked by Validate
		pr := &peer{name: p, base: u.String() + cfg.peerPath()}
		s.peers = append(s.peers, pr)
		s.byName[p] = pr
	}
	if len(s.peers) > 0 {
		known := func(p string) bool { return s.byName[p] != nil }
		if s.journal, err = openJournal(cfg.JournalDir, cfg.journalLimit(), known, log); err != nil {
			return nil, err
		}
		if n := s.journal.len(); n > 0 {
			log.Info("purge journal: purges pending for peers", "entries", n)
		}
		s.stats.pending.Store(int64(s.journal.len()))
	}
	return s, nil
}

// Path returns the route prefix the gateway mounts the service on ("/purge" by default).
func (s *Service) Path() string { return s.cfg.path() }

// Reload validates cfg and applies it to the requests and deliveries that start after it: the
// access rules (allow, deny, access, satisfy, token, hmac_secret), the credentials sent to peers,
// soft, not_found_status, peer_timeout, peer_concurrency and the retry delays. The settings that
// shape the service itself (path, name, peers, peer_path, journal_dir, journal_limit) keep their
// values from New; Reload returns the names of those that differ in cfg, as in the YAML file, so
// that the caller can say they wait for a restart. On error nothing changes.
func (s *Service) Reload(cfg Config) (startOnly []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := cfg.rules()
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		same bool
	}{
		{"path", cfg.path() == s.cfg.path()},
		{"name", cfg.Name == s.cfg.Name},
		{"peers", slices.Equal(cfg.Peers, s.cfg.Peers)},
		{"peer_path", cfg.peerPath() == s.cfg.peerPath()},
		{"journal_dir", cfg.JournalDir == s.cfg.JournalDir},
		{"journal_limit", cfg.journalLimit() == s.cfg.journalLimit()},
	} {
		if !f.same {
			startOnly = append(startOnly, f.name)
		}
	}
	s.cur.Store(&settings{cfg: cfg, acl: a})
	return startOnly, nil
}

// allowedMethods is the Allow header of 405 replies.
const allowedMethods = "GET, PURGE, DELETE"

// Handle authorises and applies one purge request and returns the reply: 200 with a Result when
// something was purged, not_found_status when nothing matched, 403 when refused (nothing is purged),
// 400 for a malformed path, 405 for another method, 500 when a peer could neither be reached nor
// journaled. Forwarding to peers is bounded by peer_timeout; ctx cancellation does not cut it short.
func (s *Service) Handle(ctx context.Context, r Request) Response {
	s.stats.requests.Add(1)
	switch r.Method {
	case "GET", "PURGE", "DELETE":
	default:
		s.stats.refused.Add(1)
		resp := errorResponse(http.StatusMethodNotAllowed, "method not allowed; use GET, PURGE or DELETE")
		resp.Allow = allowedMethods
		return resp
	}
	sel, err := r.selector()
	if err == nil {
		// A signature signs the key: the path, or "tag:T" for a tag purge.
		r.Path = sel.String()
	}
	cur := s.cur.Load()
	if ok, why := cur.authorize(&r, s.now()); !ok {
		s.stats.denied.Add(1)
		s.log.Info("purge refused", "remote", r.RemoteIP, "path", r.Path, "reason", why)
		return errorResponse(http.StatusForbidden, "forbidden")
	}
	if err != nil {
		s.stats.refused.Add(1)
		return errorResponse(http.StatusBadRequest, err.Error())
	}
	res, status := s.apply(ctx, sel, cur.cfg.Soft || r.Soft, r.FromPeer)
	if status == http.StatusOK && res.Purged == 0 && !r.FromPeer {
		s.stats.notFound.Add(1)
		status = cur.cfg.notFoundStatus()
	}
	s.log.Info("purge", "remote", r.RemoteIP, "key", res.Key, "soft", res.Soft, "from_peer", r.FromPeer,
		"purged", res.Purged, "bytes", res.Bytes, "status", status)
	body, _ := json.Marshal(res) // Result always marshals
	return Response{Status: status, ContentType: "application/json", Body: append(body, '\n')}
}

// errTagAndPath refuses a request that names both a tag and a path.
var errTagAndPath = errors.New("purge: a tag purge takes no path; write <purge path>?tag=T")

// selector parses what r asks to purge.
func (r *Request) selector() (Selector, error) {
	if r.Tag == "" {
		return ParsePath(r.Path)
	}
	if r.Path != "" && r.Path != "/" {
		return Selector{}, errTagAndPath
	}
	return ParseTag(r.Tag)
}

// Apply purges path (as ParsePath reads it) here and on every peer, without authorisation: it is
// for the caller's own invalidations, such as a gateway purging what a PUT or DELETE through it
// replaced. Peers that cannot be reached get the purge from the journal, as with Handle. It returns
// an error for a malformed path, or when a peer could neither be reached nor journaled.
func (s *Service) Apply(ctx context.Context, path string, soft bool) (Result, error) {
	sel, err := ParsePath(path)
	if err != nil {
		return Result{}, err
	}
	res, status := s.apply(ctx, sel, s.cur.Load().cfg.Soft || soft, false)
	if status != http.StatusOK {
		return res, errors.New("purge: a peer could neither be reached nor journaled")
	}
	return res, nil
}

// apply purges sel locally and, unless local, on the peers; status is 200, or 500 when a peer could
// neither be reached nor journaled.
func (s *Service) apply(ctx context.Context, sel Selector, soft, local bool) (Result, int) {
	key := sel.String()
	n, b := sel.apply(s.target, soft)
	s.stats.purged.Add(int64(n))
	s.stats.bytes.Add(b)
	res := Result{Key: key, Soft: soft, Purged: n, Bytes: b,
		Nodes: []NodeResult{{Node: s.name, Status: NodeOK, Purged: n, Bytes: b}}}
	if sel.Kind == KindTag {
		res.Tag = sel.Arg
	}
	status := http.StatusOK
	if !local && len(s.peers) > 0 {
		for _, nr := range s.fanOut(ctx, key, soft) {
			res.Nodes = append(res.Nodes, nr)
			res.Purged += nr.Purged
			res.Bytes += nr.Bytes
			if nr.Status == NodeFailed {
				status = http.StatusInternalServerError
			}
		}
	}
	return res, status
}

func errorResponse(status int, msg string) Response {
	body, _ := json.Marshal(errorBody{Error: msg})
	return Response{Status: status, ContentType: "application/json", Body: append(body, '\n')}
}

// Stats is a snapshot of a Service's counters.
type Stats struct {
	Requests      int64 `json:"requests"`       // requests handled
	Denied        int64 `json:"denied"`         // refused by authorisation (403)
	Refused       int64 `json:"refused"`        // malformed path or method (400, 405)
	NotFound      int64 `json:"not_found"`      // accepted, nothing matched anywhere
	Purged        int64 `json:"purged"`         // entries purged locally
	Bytes         int64 `json:"bytes"`          // bytes purged locally
	PeerOK        int64 `json:"peer_ok"`        // deliveries accepted by a peer (direct or from the journal)
	PeerFail      int64 `json:"peer_fail"`      // delivery attempts that failed
	Journaled     int64 `json:"journaled"`      // purges written to the journal
	Pending       int64 `json:"pending"`        // purges in the journal now
	JournalErrors int64 `json:"journal_errors"` // failed journal writes
}

type counters struct {
	requests, denied, refused, notFound, purged, bytes atomic.Int64
	peerOK, peerFail, journaled, pending, journalErrs  atomic.Int64
}

// Stats returns a snapshot of the counters. It is safe to call at any time.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests: c.requests.Load(), Denied: c.denied.Load(), Refused: c.refused.Load(),
		NotFound: c.notFound.Load(), Purged: c.purged.Load(), Bytes: c.bytes.Load(),
		PeerOK: c.peerOK.Load(), PeerFail: c.peerFail.Load(), Journaled: c.journaled.Load(),
		Pending: c.pending.Load(), JournalErrors: c.journalErrs.Load(),
	}
}
