package storaged

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/metrics"
)

// Defaults applied to zero Config fields.
const (
	DefaultListen          = ":7500"
	DefaultMgmtListen      = ":7501"
	DefaultDocroot         = "/var/mogdata"
	DefaultMaxBody         = 64 * conf.GiB
	DefaultUsageInterval   = 10 * time.Second
	DefaultReadTimeout     = 60 * time.Second
	DefaultWriteTimeout    = time.Hour
	DefaultIdleTimeout     = 60 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxConns        = 10000
	// DefaultOpenFileValid is how long a small file kept open for GET is served without checking
	// its path, like nginx's open_file_cache_valid (whose default is 60s).
	DefaultOpenFileValid = time.Second
	// DefaultMaxHeaderSize is the gateway's own default (limits.max_header_size), so a request head
	// the gateway accepts is never refused here.
	DefaultMaxHeaderSize = 16 * conf.KiB
)

// MgmtOff is the mgmt_listen value that disables the side channel.
const MgmtOff = "off"

// Config is the `storaged:` section of the mogway YAML file. The zero value means every default.
//
//	storaged:
//	  listen: ":7500"
//	  mgmt_listen: ":7501"
//	  docroot: /var/mogdata
//	  max_body: 64GiB
//	  usage_interval: 10s
type Config struct {
	// Listen is the HTTP address (PUT/GET/HEAD/DELETE). Default ":7500".
	Listen string `yaml:"listen"`
	// MgmtListen is the side-channel address (size, MD5, SHA-1, watch). Default ":7501"; "off" disables it.
	MgmtListen string `yaml:"mgmt_listen"`
	// Docroot holds one dev<N> directory per device. Default "/var/mogdata".
	Docroot string `yaml:"docroot"`
	// MaxBody is the largest PUT body accepted; larger ones get 413. Default 64GiB.
	MaxBody conf.Size `yaml:"max_body"`
	// UsageInterval is how often each dev<N>/usage file is rewritten. Default 10s.
	UsageInterval conf.Duration `yaml:"usage_interval"`
	// ReadTimeout bounds reading request headers and any silence while a request body streams in.
	// Default 60s.
	ReadTimeout conf.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one whole response, body included. Default 1h.
	WriteTimeout conf.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive HTTP connections idle this long. Default 60s.
	IdleTimeout conf.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds the graceful stop; connections still busy afterwards are closed. Default 30s.
	ShutdownTimeout conf.Duration `yaml:"shutdown_timeout"`
	// MaxConns is the most HTTP connections open at once. At the bound the connection idle longest
	// between keep-alive requests is closed to make room; with none idle a new connection is
	// answered 503 and closed. Default 10000.
	MaxConns int `yaml:"max_conns"`
	// MaxHeaderSize is the largest request head (request line and headers); a larger one gets 431.
	// Each open connection holds a read buffer of this size. Default 16KiB.
	MaxHeaderSize conf.Size `yaml:"max_header_size"`
	// OpenFileValid is how long a small file (16KiB or less) kept open between GETs is served to
	// GET without a stat of its path, as nginx's open_file_cache_valid. The node is the only writer
	// of its docroot, and a PUT, DELETE or rename through it takes effect at once; a file replaced
	// or removed behind its back is served to GET as it was for at most this long. HEAD (the
	// tracker's size checks) always stats the path. "0s" stats it on every GET too. Default 1s.
	OpenFileValid *conf.Duration `yaml:"open_file_valid"`
	// MetricsAllow are the client networks (CIDR or address) allowed to read /metrics; others get
	// 403. Default loopback only: [127.0.0.0/8, ::1/128].
	MetricsAllow []string `yaml:"metrics_allow"`
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	c.Listen = cmp.Or(c.Listen, DefaultListen)
	c.MgmtListen = cmp.Or(c.MgmtListen, DefaultMgmtListen)
	c.Docroot = cmp.Or(c.Docroot, DefaultDocroot)
	c.MaxBody = c.MaxBody.Or(DefaultMaxBody)
	c.UsageInterval = conf.Duration(c.UsageInterval.Or(DefaultUsageInterval))
	c.ReadTimeout = conf.Duration(c.ReadTimeout.Or(DefaultReadTimeout))
	c.WriteTimeout = conf.Duration(c.WriteTimeout.Or(DefaultWriteTimeout))
	c.IdleTimeout = conf.Duration(c.IdleTimeout.Or(DefaultIdleTimeout))
	c.ShutdownTimeout = conf.Duration(c.ShutdownTimeout.Or(DefaultShutdownTimeout))
	c.MaxConns = cmp.Or(c.MaxConns, DefaultMaxConns)
	c.MaxHeaderSize = c.MaxHeaderSize.Or(DefaultMaxHeaderSize)
	if c.OpenFileValid == nil {
		v := conf.Duration(DefaultOpenFileValid)
		c.OpenFileValid = &v
	}
	if len(c.MetricsAllow) == 0 {
		c.MetricsAllow = metrics.Loopback
	}
	return c
}

// MgmtEnabled reports whether the side channel should be bound.
func (c *Config) MgmtEnabled() bool { return c.MgmtListen != MgmtOff }

// ListenAddr returns the HTTP address to bind, with the default applied.
func (c *Config) ListenAddr() string { return c.withDefaults().Listen }

// MgmtAddr returns the side-channel address to bind, with the default applied; "" when disabled.
func (c *Config) MgmtAddr() string {
	if !c.MgmtEnabled() {
		return ""
	}
	return c.withDefaults().MgmtListen
}

// Validate checks the section; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	d := c.withDefaults()
	var p conf.Problems
	if err := checkAddr(d.Listen); err != nil {
		p.Add("listen", `write host:port, e.g. ":7500" or "10.0.0.1:7500"`, "%v", err)
	}
	if d.MgmtListen != MgmtOff {
		if err := checkAddr(d.MgmtListen); err != nil {
			p.Add("mgmt_listen", `write host:port, e.g. ":7501", or "off"`, "%v", err)
		} else if d.MgmtListen == d.Listen && !strings.HasSuffix(d.Listen, ":0") {
			p.Add("mgmt_listen", "use another port than listen, or \"off\"",
				"is the same address as listen (%s)", d.Listen)
		}
	}
	if !filepath.IsAbs(d.Docroot) {
		p.Add("docroot", "write an absolute path such as /var/mogdata",
			"%q is not an absolute path", d.Docroot)
	}
	if d.MaxBody < 0 {
		p.Add("max_body", "write a size such as 64GiB", "must not be negative")
	}
	p.AtLeast("usage_interval", d.UsageInterval, time.Second, "write 1s or more (mogstored uses 10s)")
	p.NotNegative("max_conns", d.MaxConns, "write a positive number or leave it out")
	if d.MaxHeaderSize < conf.KiB || d.MaxHeaderSize > conf.MiB {
		p.Add("max_header_size", "write a size from 1KiB to 1MiB, e.g. 16KiB",
			"%s is out of range", d.MaxHeaderSize)
	}
	if _, i, err := metrics.ParseNets(d.MetricsAllow); err != nil {
		p.Add(fmt.Sprintf("metrics_allow[%d]", i), "write a CIDR such as 127.0.0.0/8 or an address",
			"%q is not a network", d.MetricsAllow[i])
	}
	return p.Err()
}

func checkAddr(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if port == "" {
		return errors.New("missing port")
	}
	return nil
}
