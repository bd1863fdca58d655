package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/purge"
)

// Config is the `gateway:` section of the mogway YAML file. The zero value means every default, but a
// gateway needs at least one route to serve anything besides /healthz and /status.
type Config struct {
	// Listen is the HTTP address. Default ":8080"; write ":80" to stand where nginx stood (the systemd
	// socket unit binds port 80 for an unprivileged process).
	Listen string `yaml:"listen"`
	// Trackers are the MogileFS trackers (host:port, default port 7001) that tracker routes ask.
	// Required when any route is a tracker route.
	Trackers []string `yaml:"trackers"`
	// Timeouts bound every wait of the gateway; see Timeouts.
	Timeouts Timeouts `yaml:"timeouts"`
	// Limits bound what clients may send and hold; see Limits.
	Limits Limits `yaml:"limits"`
	// PathCache keeps tracker answers briefly; see PathCache.
	PathCache PathCache `yaml:"path_cache"`
	// Storage sets the passive health checks of storage nodes found through trackers.
	Storage Health `yaml:"storage"`
	// Hedge is the hedged reads of every route that does not set its own; see Hedge.
	Hedge Hedge `yaml:"hedge"`
	// AccessLog is where the access log goes: a file path, "stdout" or "off". Default "stdout".
	AccessLog string `yaml:"access_log"`
	// HealthPath answers 200 "ok" for load balancers. Default "/healthz"; "off" disables it.
	HealthPath string `yaml:"health_path"`
	// StatusPath answers JSON counters and node health. Default "/status"; "off" disables it.
	StatusPath string `yaml:"status_path"`
	// MetricsPath answers the Prometheus metrics on the main listener, to StatusAllow only, as
	// metrics_listen does on its own. Default "/metrics"; "off" disables it.
	MetricsPath string `yaml:"metrics_path"`
	// StatusAllow are the client networks (CIDR) allowed to read StatusPath. Default loopback only
	// (127.0.0.0/8 and ::1/128).
	StatusAllow []string `yaml:"status_allow"`
	// MetricsListen is the address of a second HTTP listener serving /metrics in the Prometheus
	// format to clients in StatusAllow (docs/monitoring.md). Default none (no metrics listener).
	// Not reloadable.
	MetricsListen string `yaml:"metrics_listen"`
	// ServerName is sent in the Server header. Default "mogway".
	ServerName string `yaml:"server_name"`
	// RealIP takes the client address from a header set by trusted proxies (nginx realip).
	RealIP RealIP `yaml:"real_ip"`
	// Cache, when present, caches GET and HEAD answers of every route that does not say cache: off;
	// see docs/cache.md. Default none (no cache). Not reloadable: a change takes effect at restart.
	Cache *cache.Config `yaml:"cache"`
	// Purge, when present, serves cache purges under Purge.Path (default /purge) and forwards them
	// to peer gateways; see docs/purge.md. Default none. Not reloadable.
	Purge *purge.Config `yaml:"purge"`
	// Routes map URI prefixes to a tracker domain or an upstream group; the longest prefix wins.
	Routes []Route `yaml:"routes"`
}

// RealIP configures where the client address comes from behind load balancers, as nginx's realip
// module with real_ip_recursive on. The address found is used for allow, status_allow and the access
// log.
type RealIP struct {
	// Header carries the client address: "X-Forwarded-For" (default) or a one-address header such
	// as "X-Real-IP".
	Header string `yaml:"header"`
	// TrustedProxies are the networks (CIDR) whose Header is believed. Default none: the header is
	// ignored and the connection's address is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Timeouts bound the gateway's waits. Every zero field takes its default. A field tagged
// reload:"applied" is applied by a reload (read per request from the configuration in force, or by
// the new tracker pool a change builds); the others take effect when the gateway starts.
type Timeouts struct {
	// TrackerConnect bounds connecting to one tracker. Default 3s.
	TrackerConnect conf.Duration `yaml:"tracker_connect" reload:"applied"`
	// TrackerRead bounds one tracker command, after which the gateway answers 504. Default 10s.
	TrackerRead conf.Duration `yaml:"tracker_read" reload:"applied"`
	// StorageConnect bounds connecting to a storage node or upstream server. Default 2s.
	StorageConnect conf.Duration `yaml:"storage_connect"`
	// StorageFirstByte bounds the wait for a storage node's response headers (for a PUT, from the
	// body's last byte). Default 10s.
	StorageFirstByte conf.Duration `yaml:"storage_first_byte" reload:"applied"`
	// StorageIdle bounds every wait for more body bytes from a storage node. Default 30s.
	StorageIdle conf.Duration `yaml:"storage_idle"`
	// StorageStall bounds a wait for more body bytes while another copy or server could continue
	// the body: a body stalled that long is continued from the next one with a Range request.
	// It also bounds each wait for a storage node to take more of a PUT body, and the wait for
	// its answer when the body could go to another destination. Default 5s; a value of
	// storage_idle or more turns it off.
	StorageStall conf.Duration `yaml:"storage_stall" reload:"applied"`
	// ClientRead bounds reading one request's headers and every wait for upload bytes. Default 60s.
	ClientRead conf.Duration `yaml:"client_read"`
	// ClientWrite bounds every wait to write response bytes to a client. Default 60s.
	ClientWrite conf.Duration `yaml:"client_write"`
	// KeepAlive is how long an idle client connection stays open. Default 75s (nginx keepalive_timeout).
	KeepAlive conf.Duration `yaml:"keep_alive"`
	// Shutdown bounds the graceful stop: requests still running after it are cut. Default 30s.
	Shutdown conf.Duration `yaml:"shutdown"`
}

// Limits bound what clients may send and how much the gateway holds open. Every zero field takes its
// default. reload:"applied" marks the fields a reload applies, as in Timeouts.
type Limits struct {
	// MaxHeaderSize is the largest request head (request line plus headers). Default 16KiB.
	MaxHeaderSize conf.Size `yaml:"max_header_size"`
	// MaxConnections is the most client connections open at once. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnsPerNode is the most connections to one storage node or upstream server. Default 512.
	MaxConnsPerNode int `yaml:"max_conns_per_node"`
	// MaxIdlePerTracker is how many idle connections to each tracker are kept open for the next
	// lookups, as nginx's upstream keepalive. Lookups running at once beyond it open connections that
	// are closed after their answer. Default 128.
	MaxIdlePerTracker int `yaml:"max_idle_per_tracker" reload:"applied"`
	// MaxConnsPerTracker bounds the connections open to each tracker, idle or in use, as nginx's
	// upstream max_conns. A lookup finding them all busy waits for one, for at most
	// timeouts.tracker_connect, then moves on to the next tracker. It also caps MaxIdlePerTracker.
	// Default 0: no bound.
	MaxConnsPerTracker int `yaml:"max_conns_per_tracker" reload:"applied"`
	// MaxUploadSize is the largest PUT body. Default 1GiB.
	MaxUploadSize conf.Size `yaml:"max_upload_size" reload:"applied"`
	// UploadReplayBuffer is how much of each PUT body is kept while it streams, so that a storage
	// node failing before more was read is replaced by the next destination. Default 1MiB.
	UploadReplayBuffer conf.Size `yaml:"upload_replay_buffer" reload:"applied"`
	// DisableKeepAlive closes every client connection after one response. Default false.
	DisableKeepAlive bool `yaml:"disable_keep_alive"`
}

// PathCache keeps get_paths answers for a short time so hot keys do not cost a tracker round trip.
type PathCache struct {
	// TTL is how long an answer is reused. Default 5s.
	TTL conf.Duration `yaml:"ttl"`
	// NegativeTTL is how long "unknown key" is remembered. Default 1s.
	NegativeTTL conf.Duration `yaml:"negative_ttl"`
	// Size is the number of keys kept. Default 10000; -1 disables the cache.
	Size int `yaml:"size"`
}

// Health is passive health checking of one server, as nginx's max_fails and fail_timeout.
type Health struct {
	// MaxFails failures within FailTimeout mark the server down for FailTimeout. Default 1;
	// -1 never marks it down.
	MaxFails int `yaml:"max_fails"`
	// FailTimeout is the failure window and the time a failed server is avoided. Default 10s.
	FailTimeout conf.Duration `yaml:"fail_timeout"`
}

// Route maps a URI prefix to a tracker domain (a tracker route, the nginx mogilefs module) or to a
// group of HTTP servers (an upstream route, nginx proxy_pass to an upstream block). A route with
// servers is an upstream route; any other route is a tracker route.
type Route struct {
	// Prefix is matched against the decoded, normalised URI path; the longest match wins. Required.
	Prefix string `yaml:"prefix"`

	// Domain is the MogileFS domain of a tracker route. Default "default" (as mogilefs_domain).
	Domain string `yaml:"domain"`
	// Key is how a tracker route derives the key: "module" (default: the path after the prefix,
	// without a leading slash, as mogilefs_pass) or "uri" (the whole path, leading slash included).
	Key string `yaml:"key"`
	// Class is the class of uploads. Default empty (the domain's default class).
	Class string `yaml:"class"`
	// NoVerify asks the tracker not to HEAD-check paths (mogilefs_noverify on). Default false.
	NoVerify bool `yaml:"noverify"`
	// Methods allowed on a tracker route: GET (implies HEAD), PUT, DELETE. Default [GET, HEAD].
	// PUT and DELETE need Allow or Token.
	Methods []string `yaml:"methods"`
	// Allow are the client networks (CIDR) allowed to PUT and DELETE. Default none.
	Allow []string `yaml:"allow"`
	// Token, when set, must come as "Authorization: Bearer TOKEN" on PUT and DELETE. Default none.
	Token string `yaml:"token"`

	// Servers of an upstream route, tried in weighted round-robin order.
	Servers []UpstreamServer `yaml:"servers"`
	// NextUpstream lists the outcomes after which the next server is tried, as nginx
	// proxy_next_upstream: error, timeout, invalid_header, http_500, http_502, http_503, http_504,
	// http_403, http_404, http_429, or off. Default [error, timeout].
	NextUpstream []string `yaml:"next_upstream"`
	// StripPrefix removes Prefix from the path sent upstream (nginx `proxy_pass http://group/;` with a
	// URI part). Default false: the URI is passed as the client sent it (`proxy_pass http://group;`).
	StripPrefix bool `yaml:"strip_prefix"`

	// Expires adds "Cache-Control: max-age=N" and an Expires header to 200, 206 and 304 answers.
	// Default none (0).
	Expires conf.Duration `yaml:"expires"`
	// CacheControl, when set, is sent as the Cache-Control header verbatim (wins over Expires).
	CacheControl string `yaml:"cache_control"`
	// ContentType is "extension" (from the key's extension, application/octet-stream when unknown)
	// or "upstream" (as the storage node answered). Default "extension" for tracker routes,
	// "upstream" for upstream routes.
	ContentType string `yaml:"content_type"`
	// Download names the query parameters that ask for a browser download.
	Download Download `yaml:"download"`
	// Cache is the route's caching: "off", "on", or a block of settings (see RouteCache). Default:
	// cached when the gateway has a cache.
	Cache RouteCache `yaml:"cache"`
	// Hedge sets the route's hedged reads; fields left out take the gateway's hedge setting.
	Hedge Hedge `yaml:"hedge"`
	// SecureLink, when set, admits only requests with a valid signed link (nginx secure_link and
	// secure_link_md5; see SecureLink). Default none.
	SecureLink *SecureLink `yaml:"secure_link"`
	// Image, when set, makes image variants (thumbnails) on GET; see RouteImage. Default none.
	Image *RouteImage `yaml:"image"`
}

// UpstreamServer is one member of an upstream route's group.
type UpstreamServer struct {
	// Addr is host:port of the server. Required.
	Addr string `yaml:"addr"`
	// Weight is the share of requests, as nginx weight=. Default 1.
	Weight int `yaml:"weight"`
	// MaxFails as nginx max_fails=. Default 1; -1 never marks the server down.
	MaxFails int `yaml:"max_fails"`
	// FailTimeout as nginx fail_timeout=. Default 10s.
	FailTimeout conf.Duration `yaml:"fail_timeout"`
}

// Download names the query parameters that turn an answer into a browser download.
type Download struct {
	// Param, when its value is not "0" or "false", makes the answer an attachment. Default "download".
	Param string `yaml:"param"`
	// FilenameParam names the file the browser saves; it implies an attachment unless Param is "0".
	// Default "filename".
	FilenameParam string `yaml:"filename_param"`
}

// Defaults.
const (
	defaultListen            = ":8080"
	defaultTrackerPort       = "7001"
	defaultTrackerConnect    = 3 * time.Second
	defaultTrackerRead       = 10 * time.Second
	defaultStorageConnect    = 2 * time.Second
	defaultStorageFirstByte  = 10 * time.Second
	defaultStorageIdle       = 30 * time.Second
	defaultStorageStall      = 5 * time.Second
	defaultClientRead        = 60 * time.Second
	defaultClientWrite       = 60 * time.Second
	defaultKeepAlive         = 75 * time.Second
	defaultShutdown          = 30 * time.Second
	defaultMaxHeaderSize     = 16 * conf.KiB
	defaultMaxConnections    = 10000
	defaultMaxConnsPerNode   = 512
	defaultMaxIdlePerTracker = 128
	defaultMaxUploadSize     = conf.GiB
	defaultReplayBuffer      = conf.MiB
	maxReplayBuffer          = 64 * conf.MiB
	defaultCacheTTL          = 5 * time.Second
	defaultNegativeTTL       = time.Second
	defaultCacheSize         = 10000
	defaultMaxFails          = 1
	defaultFailTimeout       = 10 * time.Second
)

// ListenAddr is the address to bind: Listen, or its default.
func (c *Config) ListenAddr() string {
	if c.Listen == "" {
		return defaultListen
	}
	return c.Listen
}

// withDefaults returns c with every zero field replaced by its default. It does not validate.
func (c Config) withDefaults() Config {
	c.Listen = cmp.Or(c.Listen, defaultListen)
	t := &c.Timeouts
	setDur(&t.TrackerConnect, defaultTrackerConnect)
	setDur(&t.TrackerRead, defaultTrackerRead)
	setDur(&t.StorageConnect, defaultStorageConnect)
	setDur(&t.StorageFirstByte, defaultStorageFirstByte)
	setDur(&t.StorageIdle, defaultStorageIdle)
	setDur(&t.StorageStall, defaultStorageStall)
	setDur(&t.ClientRead, defaultClientRead)
	setDur(&t.ClientWrite, defaultClientWrite)
	setDur(&t.KeepAlive, defaultKeepAlive)
	setDur(&t.Shutdown, defaultShutdown)
	l := &c.Limits
	l.MaxHeaderSize = cmp.Or(l.MaxHeaderSize, defaultMaxHeaderSize)
	l.MaxConnections = cmp.Or(l.MaxConnections, defaultMaxConnections)
	l.MaxConnsPerNode = cmp.Or(l.MaxConnsPerNode, defaultMaxConnsPerNode)
	l.MaxIdlePerTracker = cmp.Or(l.MaxIdlePerTracker, defaultMaxIdlePerTracker)
	l.MaxUploadSize = cmp.Or(l.MaxUploadSize, defaultMaxUploadSize)
	l.UploadReplayBuffer = cmp.Or(l.UploadReplayBuffer, defaultReplayBuffer)
	p := &c.PathCache
	setDur(&p.TTL, defaultCacheTTL)
	setDur(&p.NegativeTTL, defaultNegativeTTL)
	p.Size = cmp.Or(p.Size, defaultCacheSize)
	c.Storage = c.Storage.withDefaults()
	c.AccessLog = cmp.Or(c.AccessLog, "stdout")
	c.HealthPath = cmp.Or(c.HealthPath, "/healthz")
	c.StatusPath = cmp.Or(c.StatusPath, "/status")
	c.MetricsPath = cmp.Or(c.MetricsPath, "/metrics")
	if len(c.StatusAllow) == 0 {
		c.StatusAllow = []string{"127.0.0.0/8", "::1/128"}
	}
	c.ServerName = cmp.Or(c.ServerName, "mogway")
	c.RealIP.Header = cmp.Or(c.RealIP.Header, "X-Forwarded-For")
	c.Trackers = slices.Clone(c.Trackers)
	for i, tr := range c.Trackers {
		if _, _, err := net.SplitHostPort(tr); err != nil {
			c.Trackers[i] = net.JoinHostPort(tr, defaultTrackerPort)
		}
	}
	c.Hedge = c.Hedge.withDefaults(Hedge{})
	routes := make([]Route, len(c.Routes))
	for i, r := range c.Routes {
		routes[i] = r.withDefaults()
		routes[i].Hedge = r.Hedge.withDefaults(c.Hedge)
	}
	c.Routes = routes
	return c
}

func (h Health) withDefaults() Health {
	h.MaxFails = cmp.Or(h.MaxFails, defaultMaxFails)
	setDur(&h.FailTimeout, defaultFailTimeout)
	return h
}

func (r Route) withDefaults() Route {
	if r.isUpstream() {
		r.ContentType = cmp.Or(r.ContentType, "upstream")
		if len(r.NextUpstream) == 0 {
			r.NextUpstream = []string{"error", "timeout"}
		}
		servers := make([]UpstreamServer, len(r.Servers))
		for i, s := range r.Servers {
			s.Weight = cmp.Or(s.Weight, 1)
			h := Health{MaxFails: s.MaxFails, FailTimeout: s.FailTimeout}.withDefaults()
			s.MaxFails, s.FailTimeout = h.MaxFails, h.FailTimeout
			servers[i] = s
		}
		r.Servers = servers
	} else {
		r.Domain = cmp.Or(r.Domain, "default")
		r.Key = cmp.Or(r.Key, "module")
		r.ContentType = cmp.Or(r.ContentType, "extension")
	}
	if len(r.Methods) == 0 {
		r.Methods = []string{"GET", "HEAD"}
	}
	ms := make([]string, 0, len(r.Methods)+1)
	for _, m := range r.Methods {
		ms = append(ms, strings.ToUpper(m))
	}
	if slices.Contains(ms, "GET") && !slices.Contains(ms, "HEAD") {
		ms = append(ms, "HEAD")
	}
	r.Methods = ms
	r.Download.Param = cmp.Or(r.Download.Param, "download")
	r.Download.FilenameParam = cmp.Or(r.Download.FilenameParam, "filename")
	return r
}

func (r *Route) isUpstream() bool { return len(r.Servers) > 0 }

func setDur(d *conf.Duration, def time.Duration) {
	if *d == 0 {
		*d = conf.Duration(def)
	}
}

var nextUpstreamWords = []string{"error", "timeout", "invalid_header", "http_500", "http_502", "http_503",
	"http_504", "http_403", "http_404", "http_429", "off"}

// Validate checks the section; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, fix, format string, args ...any) {
		errs = append(errs, conf.Field(field, fix, format, args...))
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			add("listen", `write host:port, e.g. listen: ":80"`, "%q is not an address: %v", c.Listen, err)
		}
	}
	for i, tr := range c.Trackers {
		host := tr
		if h, _, err := net.SplitHostPort(tr); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(tr, " /") {
			add(fmt.Sprintf("trackers[%d]", i), "write host:port, e.g. 10.0.0.1:7001", "%q is not a tracker address", tr)
		}
	}
	if c.Limits.MaxConnections < 0 {
		add("limits.max_connections", "write a positive number or leave it out", "must not be negative")
	}
	if c.Limits.MaxConnsPerNode < 0 {
		add("limits.max_conns_per_node", "write a positive number or leave it out", "must not be negative")
	}
	if c.Limits.MaxIdlePerTracker < 0 {
		add("limits.max_idle_per_tracker", "write a positive number or leave it out", "must not be negative")
	}
	if c.Limits.MaxConnsPerTracker < 0 {
		add("limits.max_conns_per_tracker", "write a positive number, or 0 or nothing for no bound", "must not be negative")
	}
	if c.Limits.MaxHeaderSize != 0 && c.Limits.MaxHeaderSize < conf.KiB {
		add("limits.max_header_size", "write at least 1KiB, e.g. 16KiB", "%s is too small", c.Limits.MaxHeaderSize)
	}
	if c.Limits.UploadReplayBuffer > maxReplayBuffer {
		add("limits.upload_replay_buffer", "write at most 64MiB, e.g. 1MiB", "%s is more than every upload should hold", c.Limits.UploadReplayBuffer)
	}
	if c.PathCache.Size < -1 {
		add("path_cache.size", "write a positive number, or -1 to disable the cache", "%d is not a size", c.PathCache.Size)
	}
	if c.Storage.MaxFails < -1 {
		add("storage.max_fails", "write a positive number, or -1 to never mark a node down", "%d is not allowed", c.Storage.MaxFails)
	}
	for _, p := range []struct{ field, v string }{{"health_path", c.HealthPath}, {"status_path", c.StatusPath}, {"metrics_path", c.MetricsPath}} {
		if p.v != "" && p.v != "off" && !strings.HasPrefix(p.v, "/") {
			add(p.field, `write a path such as /healthz, or "off"`, "%q does not start with /", p.v)
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			add("metrics_listen", `write host:port, e.g. "127.0.0.1:9180", or leave it out`, "invalid address %q", c.MetricsListen)
		} else if c.MetricsListen == c.ListenAddr() && !strings.HasSuffix(c.MetricsListen, ":0") {
			add("metrics_listen", "use another port than listen", "is the same address as listen")
		}
	}
	for i, s := range c.StatusAllow {
		if _, err := parseNet(s); err != nil {
			add(fmt.Sprintf("status_allow[%d]", i), "write a CIDR such as 127.0.0.0/8 or an address", "%v", err)
		}
	}
	for i, s := range c.RealIP.TrustedProxies {
		if _, err := parseNet(s); err != nil {
			add(fmt.Sprintf("real_ip.trusted_proxies[%d]", i), "write a CIDR such as 10.0.0.0/8 or an address", "%v", err)
		}
	}
	if strings.ContainsAny(c.RealIP.Header, " :\r\n") {
		add("real_ip.header", "write a header name such as X-Forwarded-For", "%q is not a header name", c.RealIP.Header)
	}
	if err := c.Hedge.Validate(); err != nil {
		errs = append(errs, conf.Within("hedge", err))
	}
	seen := map[string]int{}
	tracked := false
	for i, r := range c.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		if j, dup := seen[r.Prefix]; dup {
			add(field+".prefix", "give each route its own prefix", "%q is also the prefix of routes[%d]", r.Prefix, j)
		}
		seen[r.Prefix] = i
		if !r.isUpstream() {
			tracked = true
		}
		if err := r.Validate(); err != nil {
			errs = append(errs, conf.Within(field, err))
		}
	}
	if c.Cache != nil {
		if err := c.Cache.Validate(); err != nil {
			errs = append(errs, conf.Within("cache", err))
		}
	} else {
		for i, r := range c.Routes {
			if r.Cache.enabled(false) {
				add(fmt.Sprintf("routes[%d].cache", i), "add a cache: block to the gateway section, or remove the route's cache setting",
					"the route asks for caching but the gateway has no cache")
			}
		}
	}
	if c.Purge != nil {
		if err := c.Purge.Validate(); err != nil {
			errs = append(errs, conf.Within("purge", err))
		}
		p := strings.TrimSuffix(c.Purge.Path, "/")
		p = cmp.Or(p, purge.DefaultPath)
		for i, r := range c.Routes {
			if strings.HasPrefix(r.Prefix, p+"/") || r.Prefix == p {
				add(fmt.Sprintf("routes[%d].prefix", i), "move the route or set purge.path elsewhere",
					"%q is under the purge path %q", r.Prefix, p)
			}
		}
	}
	if tracked && len(c.Trackers) == 0 {
		add("trackers", "list the trackers, e.g. trackers: [10.0.0.1:7001]", "a tracker route needs at least one tracker")
	}
	return errors.Join(errs...)
}

// Validate checks one route; fields are named relative to the route.
func (r *Route) Validate() error {
	var errs []error
	add := func(field, fix, format string, args ...any) {
		errs = append(errs, conf.Field(field, fix, format, args...))
	}
	switch {
	case r.Prefix == "":
		add("prefix", "write e.g. prefix: /download/", "is required")
	case !strings.HasPrefix(r.Prefix, "/"):
		add("prefix", "write e.g. prefix: /download/", "%q must start with /", r.Prefix)
	case cleanPrefix(r.Prefix) != r.Prefix:
		add("prefix", fmt.Sprintf("write %q", cleanPrefix(r.Prefix)), "%q is not a normalised path", r.Prefix)
	}
	methods := []string{"GET", "HEAD", "PUT", "DELETE"}
	if r.isUpstream() {
		methods = []string{"GET", "HEAD"}
		for _, f := range []struct {
			name string
			set  bool
		}{{"domain", r.Domain != ""}, {"key", r.Key != ""}, {"class", r.Class != ""}, {"noverify", r.NoVerify},
			{"allow", len(r.Allow) > 0}, {"token", r.Token != ""}} {
			if f.set {
				add(f.name, "remove it, or remove servers to make this a tracker route", "applies only to tracker routes")
			}
		}
		for i, s := range r.Servers {
			f := fmt.Sprintf("servers[%d]", i)
			if _, port, err := net.SplitHostPort(s.Addr); err != nil || port == "" {
				add(f+".addr", "write host:port, e.g. 10.0.0.5:8888", "%q is not an address", s.Addr)
			}
			if s.Weight < 0 {
				add(f+".weight", "write a positive weight", "%d is negative", s.Weight)
			}
			if s.MaxFails < -1 {
				add(f+".max_fails", "write a positive number, or -1 to never mark it down", "%d is not allowed", s.MaxFails)
			}
		}
		for i, w := range r.NextUpstream {
			if !slices.Contains(nextUpstreamWords, w) {
				add(fmt.Sprintf("next_upstream[%d]", i), "write one of "+strings.Join(nextUpstreamWords, ", "), "%q is unknown", w)
			}
		}
		if slices.Contains(r.NextUpstream, "off") && len(r.NextUpstream) > 1 {
			add("next_upstream", "write [off] alone", "off cannot be combined with other conditions")
		}
	} else {
		if len(r.NextUpstream) > 0 || r.StripPrefix {
			add("next_upstream", "remove next_upstream and strip_prefix, or add servers", "applies only to upstream routes")
		}
		if r.Key != "" && r.Key != "module" && r.Key != "uri" {
			add("key", `write "module" or "uri"`, "%q is unknown", r.Key)
		}
		if strings.ContainsAny(r.Domain, " &=\x00") {
			add("domain", "use a plain domain name", "%q contains characters a domain cannot have", r.Domain)
		}
	}
	if err := r.Hedge.Validate(); err != nil {
		errs = append(errs, conf.Within("hedge", err))
	}
	writes := false
	for i, m := range r.Methods {
		m = strings.ToUpper(m)
		if !slices.Contains(methods, m) {
			add(fmt.Sprintf("methods[%d]", i), "write some of "+strings.Join(methods, ", "), "%q is not allowed here", m)
		}
		if m == "PUT" || m == "DELETE" {
			writes = true
		}
	}
	if writes && len(r.Allow) == 0 && r.Token == "" {
		add("methods", "add allow: [10.0.0.0/8] and/or token: SECRET", "PUT and DELETE need allow or token")
	}
	for i, s := range r.Allow {
		if _, err := parseNet(s); err != nil {
			add(fmt.Sprintf("allow[%d]", i), "write a CIDR such as 10.0.0.0/8 or an address", "%v", err)
		}
	}
	if r.ContentType != "" && r.ContentType != "extension" && r.ContentType != "upstream" {
		add("content_type", `write "extension" or "upstream"`, "%q is unknown", r.ContentType)
	}
	if strings.ContainsAny(r.CacheControl, "\r\n") {
		add("cache_control", "write one header value", "contains a line break")
	}
	if err := r.Cache.Validate(); err != nil {
		errs = append(errs, conf.Within("cache", err))
	}
	if r.SecureLink != nil {
		errs = append(errs, conf.Within("secure_link", r.SecureLink.Validate()))
	}
	if r.Image != nil {
		errs = append(errs, conf.Within("image", r.Image.Validate()))
	}
	return errors.Join(errs...)
}

// parseNets reads a validated list of networks (see parseNet); an entry that does not parse is left out.
func parseNets(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := parseNet(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// inNets reports whether one of nets contains a.
func inNets(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseNet reads a CIDR or a single address.
func parseNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or network", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
