package purge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// Config is the `purge:` block of the gateway section. The zero value means every default: the route
// /purge, open to loopback clients only, no peers.
type Config struct {
	// Path is the URL path prefix of the purge route; default "/purge".
	Path string `yaml:"path"`
	// Allow lists addresses or CIDR ranges ("10.0.0.0/8", "::1", "all") that may purge; default none.
	// With Deny it forms one rule set where the most specific matching entry wins and an address
	// matched by neither is refused. When Allow, Deny and Access are all empty, only loopback may purge.
	Allow []string `yaml:"allow"`
	// Deny lists addresses or CIDR ranges that may not purge; default none. See Allow.
	Deny []string `yaml:"deny"`
	// Access is an nginx-style ordered rule list, first match wins, unmatched addresses refused:
	// ["allow 127.0.0.1", "deny 192.168.1.1", "allow 192.168.1.0/24", "deny all"]; default none.
	// It cannot be combined with Allow or Deny.
	Access []string `yaml:"access"`
	// Satisfy is "any" (default: an allowed address, a valid token or a valid signature is enough)
	// or "all" (an allowed address and, when Token or HMACSecret is set, a valid credential).
	Satisfy string `yaml:"satisfy"`
	// Token is a bearer token accepted in "Authorization: Bearer <token>"; default none (at least 16
	// characters when set).
	Token string `yaml:"token"`
	// HMACSecret is the shared secret of signed requests (see Sign); default none (at least 16
	// characters when set).
	HMACSecret string `yaml:"hmac_secret"`
	// Soft makes every purge a soft purge (entries marked stale, not removed); default false, in which
	// case a request asks for one with ?soft=1.
	Soft bool `yaml:"soft"`
	// NotFoundStatus is the HTTP status when nothing matched; default 404.
	NotFoundStatus int `yaml:"not_found_status"`
	// Name identifies this node in replies; default the host name.
	Name string `yaml:"name"`
	// Peers are the other gateways ("gw2:8080" or "https://gw2:8443") every accepted purge is
	// forwarded to; default none.
	Peers []string `yaml:"peers"`
	// PeerPath is the purge route prefix on the peers; default Path.
	PeerPath string `yaml:"peer_path"`
	// PeerToken is the bearer token sent to peers; default Token.
	PeerToken string `yaml:"peer_token"`
	// PeerHMACSecret signs requests sent to peers; default HMACSecret.
	PeerHMACSecret string `yaml:"peer_hmac_secret"`
	// PeerTimeout bounds one delivery to one peer; default 5s.
	PeerTimeout conf.Duration `yaml:"peer_timeout"`
	// PeerConcurrency is how many peers are contacted at once; default 8.
	PeerConcurrency int `yaml:"peer_concurrency"`
	// RetryMin is the first delay before a failed peer is retried; default 1s. It doubles per failure.
	RetryMin conf.Duration `yaml:"retry_min"`
	// RetryMax caps the retry delay; default 1m.
	RetryMax conf.Duration `yaml:"retry_max"`
	// JournalLimit is how many purges may wait in the journal for one peer; beyond it they are
	// replaced by one purge of everything for that peer. Default 10000.
	JournalLimit int `yaml:"journal_limit"`
	// JournalDir holds the journal of purges not yet delivered to peers (one file); required when
	// Peers is set, default none.
	JournalDir string `yaml:"journal_dir"`
}

// Defaults.
const (
	DefaultPath            = "/purge"
	DefaultNotFoundStatus  = 404
	DefaultPeerTimeout     = 5 * time.Second
	DefaultPeerConcurrency = 8
	DefaultRetryMin        = time.Second
	DefaultRetryMax        = time.Minute
	DefaultJournalLimit    = 10000
	minSecretLen           = 16
)

func (c *Config) path() string {
	if c.Path == "" {
		return DefaultPath
	}
	return strings.TrimSuffix(c.Path, "/")
}

func (c *Config) peerPath() string {
	if c.PeerPath == "" {
		return c.path()
	}
	return strings.TrimSuffix(c.PeerPath, "/")
}

func (c *Config) peerToken() string {
	if c.PeerToken == "" {
		return c.Token
	}
	return c.PeerToken
}

func (c *Config) peerSecret() string {
	if c.PeerHMACSecret == "" {
		return c.HMACSecret
	}
	return c.PeerHMACSecret
}

func (c *Config) notFoundStatus() int {
	if c.NotFoundStatus == 0 {
		return DefaultNotFoundStatus
	}
	return c.NotFoundStatus
}

func (c *Config) journalLimit() int {
	if c.JournalLimit <= 0 {
		return DefaultJournalLimit
	}
	return c.JournalLimit
}

func (c *Config) peerConcurrency() int {
	if c.PeerConcurrency <= 0 {
		return DefaultPeerConcurrency
	}
	return c.PeerConcurrency
}

// Validate checks the block; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	var probs conf.Problems
	if c.Path != "" && (!strings.HasPrefix(c.Path, "/") || c.path() == "") {
		probs.Add("path", `write an absolute URL path such as "/purge"`, "%q is not an absolute path", c.Path)
	}
	if c.PeerPath != "" && (!strings.HasPrefix(c.PeerPath, "/") || c.peerPath() == "") {
		probs.Add("peer_path", `write an absolute URL path such as "/purge"`, "%q is not an absolute path", c.PeerPath)
	}
	_, err := c.rules()
	probs.AddErr(err)
	switch c.Satisfy {
	case "", "any", "all":
	default:
		probs.Add("satisfy", `write "any" or "all"`, "unknown value %q", c.Satisfy)
	}
	for _, s := range []struct{ field, v string }{
		{"token", c.Token}, {"hmac_secret", c.HMACSecret},
		{"peer_token", c.PeerToken}, {"peer_hmac_secret", c.PeerHMACSecret},
	} {
		if s.v == "" {
			continue
		}
		if len(s.v) < minSecretLen {
			probs.Add(s.field, fmt.Sprintf("use at least %d random characters", minSecretLen), "too short (%d characters)", len(s.v))
		}
		if strings.ContainsAny(s.v, " \t\r\n") {
			probs.Add(s.field, "remove the whitespace", "contains whitespace")
		}
	}
	if c.NotFoundStatus != 0 && (c.NotFoundStatus < 200 || c.NotFoundStatus > 599) {
		probs.Add("not_found_status", "write an HTTP status such as 404 or 200", "%d is not an HTTP status", c.NotFoundStatus)
	}
	if c.PeerConcurrency < 0 {
		probs.Add("peer_concurrency", "write a positive number or leave it out for 8", "negative value %d", c.PeerConcurrency)
	}
	if c.JournalLimit < 0 {
		probs.Add("journal_limit", "write a positive number or leave it out for 10000", "negative value %d", c.JournalLimit)
	}
	if c.RetryMin != 0 && c.RetryMax != 0 && c.RetryMin > c.RetryMax {
		probs.Add("retry_min", "make retry_min at most retry_max", "%s is longer than retry_max %s", c.RetryMin, c.RetryMax)
	}
	seen := map[string]int{}
	for i, p := range c.Peers {
		field := fmt.Sprintf("peers[%d]", i)
		if _, err := peerURL(p); err != nil {
			probs.Add(field, `write host:port or an http(s) URL such as "gw2:8080"`, "%v", err)
			continue
		}
		if j, dup := seen[p]; dup {
			probs.Add(field, "remove the duplicate", "same peer as peers[%d]", j)
		}
		seen[p] = i
	}
	if len(c.Peers) > 0 && c.JournalDir == "" {
		probs.Add("journal_dir", `write a directory such as "/var/lib/mogway/purge"`, "required when peers are set, to keep purges for unreachable peers")
	}
	return probs.Err()
}

// peerURL returns the scheme://host:port base of a configured peer.
func peerURL(p string) (*url.URL, error) {
	if p == "" {
		return nil, errors.New("empty peer")
	}
	if !strings.Contains(p, "://") {
		host, port, err := net.SplitHostPort(p)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("%q is not host:port", p)
		}
		return &url.URL{Scheme: "http", Host: p}, nil
	}
	u, err := url.Parse(p)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", p, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q must be http(s)://host[:port] without path or query; set peer_path for the route", p)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
