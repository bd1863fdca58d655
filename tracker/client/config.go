package client

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// DefaultPort is the tracker port appended to an address given without one.
const DefaultPort = "7001"

// Defaults for the zero values of Config.
const (
	DefaultDialTimeout       = time.Second
	DefaultTimeout           = 3 * time.Second
	DefaultMaxIdlePerTracker = 8
	DefaultRetryAfter        = 5 * time.Second
)

// maxBackoffShift caps how far RetryAfter grows for a tracker that keeps failing: at most
// 1<<maxBackoffShift (8) times.
const maxBackoffShift = 3

// Config configures a Pool. The zero value means every default; written as YAML:
//
//	trackers: ["10.0.0.1:7001", "10.0.0.2"]
//	dial_timeout: 1s
//	timeout: 3s
//	max_idle_per_tracker: 8
//	max_conns_per_tracker: 0
//	retry_after: 5s
type Config struct {
	// Trackers lists tracker addresses as host:port; a host without a port gets ":7001".
	// Default: ["127.0.0.1:7001"].
	Trackers []string `yaml:"trackers"`
	// DialTimeout bounds one TCP connect to a tracker. Default: 1s.
	DialTimeout conf.Duration `yaml:"dial_timeout"`
	// Timeout bounds one attempt on one tracker, from sending the request to reading the whole reply
	// line; a call that fails over may take up to one Timeout per tracker, always within the
	// caller's context. Admin commands that make the tracker refresh its caches can take several
	// seconds, so the CLI uses 15s. Default: 3s (the Perl client's).
	Timeout conf.Duration `yaml:"timeout"`
	// MaxIdlePerTracker is how many idle connections are kept per tracker for reuse. Default: 8.
	MaxIdlePerTracker int `yaml:"max_idle_per_tracker"`
	// MaxConnsPerTracker bounds the connections open to one tracker, idle or in use, as nginx's
	// upstream max_conns. A call finding them all busy waits for one, for at most DialTimeout,
	// then moves on to the next tracker. It also caps MaxIdlePerTracker. Default: 0, no bound.
	MaxConnsPerTracker int `yaml:"max_conns_per_tracker"`
	// RetryAfter is how long a tracker that failed to connect or answer is skipped; it doubles with
	// each further consecutive failure, up to 8 times this value. Default: 5s.
	RetryAfter conf.Duration `yaml:"retry_after"`
}

// NormalizeAddr returns addr with ":7001" appended when it has no port, as MogileFS-Utils do.
// Bracketed IPv6 literals ("[::1]") are understood.
func NormalizeAddr(addr string) string {
	addr = strings.TrimSpace(addr)
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
		addr = addr[1 : len(addr)-1]
	}
	return net.JoinHostPort(addr, DefaultPort)
}

// ParseTrackers splits a comma-separated tracker list ("h1:7001, h2") and normalizes each entry with
// NormalizeAddr. Empty entries are skipped.
func ParseTrackers(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, NormalizeAddr(f))
		}
	}
	return out
}

// Validate checks the configuration; errors are *conf.FieldError values joined with errors.Join.
func (c *Config) Validate() error {
	var p conf.Problems
	for i, t := range c.Trackers {
		field := "trackers[" + strconv.Itoa(i) + "]"
		host, port, err := net.SplitHostPort(NormalizeAddr(t))
		if err != nil || host == "" {
			p.Add(field, `write host:port, e.g. "10.0.0.1:7001"`, "invalid tracker address %q", t)
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.Add(field, "use a port between 1 and 65535", "invalid port in %q", t)
		}
	}
	if c.MaxIdlePerTracker < 0 {
		p.Add("max_idle_per_tracker", "use 0 for the default (8) or a positive number", "negative value %d", c.MaxIdlePerTracker)
	}
	if c.MaxConnsPerTracker < 0 {
		p.Add("max_conns_per_tracker", "use 0 for no bound or a positive number", "negative value %d", c.MaxConnsPerTracker)
	}
	return p.Err()
}

func (c Config) withDefaults() Config {
	if len(c.Trackers) == 0 {
		c.Trackers = []string{"127.0.0.1:" + DefaultPort}
	}
	ts := make([]string, len(c.Trackers))
	for i, t := range c.Trackers {
		ts[i] = NormalizeAddr(t)
	}
	c.Trackers = ts
	c.DialTimeout = conf.Duration(c.DialTimeout.Or(DefaultDialTimeout))
	c.Timeout = conf.Duration(c.Timeout.Or(DefaultTimeout))
	c.RetryAfter = conf.Duration(c.RetryAfter.Or(DefaultRetryAfter))
	if c.MaxIdlePerTracker == 0 {
		c.MaxIdlePerTracker = DefaultMaxIdlePerTracker
	}
	if c.MaxConnsPerTracker > 0 {
		c.MaxIdlePerTracker = min(c.MaxIdlePerTracker, c.MaxConnsPerTracker)
	}
	return c
}
