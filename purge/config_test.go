package purge

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/conf/conftest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string // fields named by the errors, in order
	}{
		{"zero", Config{}, nil},
		{"full", Config{Path: "/_purge", Allow: []string{"10.0.0.0/8", "::1", "all"}, Deny: []string{"10.0.0.1"},
			Token: testToken, HMACSecret: testSecret, Satisfy: "all", NotFoundStatus: 200,
			Peers: []string{"gw2:8080", "https://gw3.example:8443"}, JournalDir: "/var/lib/mogway/purge",
			PeerTimeout: conf.Duration(2 * time.Second), RetryMin: conf.Duration(time.Second), RetryMax: conf.Duration(time.Minute)}, nil},
		{"access", Config{Access: []string{"allow 127.0.0.1", "deny  192.168.1.1", "allow 192.168.1.0/24", "deny all"}}, nil},
		{"bad path", Config{Path: "purge"}, []string{"path"}},
		{"root path", Config{Path: "/"}, []string{"path"}},
		{"bad peer path", Config{PeerPath: "x"}, []string{"peer_path"}},
		{"bad cidr", Config{Allow: []string{"10.0.0.0/8", "10.0.0.0/33"}, Deny: []string{"bogus"}}, []string{"allow[1]", "deny[0]"}},
		{"host bits", Config{Allow: []string{"10.0.0.1/8"}}, []string{"allow[0]"}},
		{"zone", Config{Deny: []string{"fe80::1%eth0"}}, []string{"deny[0]"}},
		{"bad access", Config{Access: []string{"permit 10.0.0.0/8", "allow 300.0.0.1", "deny"}}, []string{"access[0]", "access[1]", "access[2]"}},
		{"access with allow", Config{Access: []string{"deny all"}, Allow: []string{"::1"}}, []string{"access"}},
		{"satisfy", Config{Satisfy: "some"}, []string{"satisfy"}},
		{"short secrets", Config{Token: "abc", HMACSecret: "def", PeerToken: "x", PeerHMACSecret: "y"},
			[]string{"token", "hmac_secret", "peer_token", "peer_hmac_secret"}},
		{"token whitespace", Config{Token: "abc def ghi jkl mno"}, []string{"token"}},
		{"not found status", Config{NotFoundStatus: 42}, []string{"not_found_status"}},
		{"peer concurrency", Config{PeerConcurrency: -1}, []string{"peer_concurrency"}},
		{"retry order", Config{RetryMin: conf.Duration(time.Hour), RetryMax: conf.Duration(time.Minute)}, []string{"retry_min"}},
		{"peers", Config{Peers: []string{"gw2", "gw2:8080", "gw2:8080", "ftp://gw3:21", "http://gw4:80/purge", ""}, JournalDir: "/tmp/j"},
			[]string{"peers[0]", "peers[2]", "peers[3]", "peers[4]", "peers[5]"}},
		{"peers need journal", Config{Peers: []string{"gw2:8080"}}, []string{"journal_dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			fields, others := conf.FieldErrors(err)
			if len(others) > 0 {
				t.Fatalf("Validate() errors %v are not *conf.FieldError", others)
			}
			var got []string
			for _, fe := range fields {
				if fe.Problem == "" || fe.Fix == "" {
					t.Errorf("Validate() error %q lacks a problem or a fix", fe)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("Validate() fields = %q (%v), want %q", got, err, tt.fields)
			}
		})
	}
}

func TestValidateNamesCIDR(t *testing.T) {
	err := (&Config{Allow: []string{"192.168.1.0/24", "192.168.300.0/24"}}).Validate()
	if err == nil || !strings.Contains(err.Error(), "allow[1]") || !strings.Contains(err.Error(), "192.168.300.0/24") {
		t.Errorf("Validate() = %v, want an error naming allow[1] and the bad entry", err)
	}
}

// section is how the gateway embeds the block.
type section struct {
	Purge Config `yaml:"purge"`
}

func (s *section) Validate() error { return conf.Within("purge", s.Purge.Validate()) }

func TestDecodeYAML(t *testing.T) {
	const doc = `purge:
  path: /_purge
  allow: [127.0.0.1, 192.168.1.0/24]
  deny: [192.168.1.1]
  token: "0123456789abcdef0123"
  soft: true
  not_found_status: 200
  peers: [gw2:8080]
  peer_timeout: 3s
  retry_max: 10m
  journal_dir: /var/lib/mogway/purge
`
	var s section
	if err := conf.Decode("mogway.yaml", []byte(doc), &s); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	c := s.Purge
	if c.path() != "/_purge" || !c.Soft || c.notFoundStatus() != 200 || c.PeerTimeout.D() != 3*time.Second ||
		c.RetryMax.D() != 10*time.Minute || len(c.Allow) != 2 || c.peerPath() != "/_purge" || c.peerToken() != c.Token {
		t.Errorf("Decode = %+v", c)
	}
	bad := "purge:\n  allow:\n    - 10.0.0.0/8\n    - 10.0.0.0/99\n"
	err := conf.Decode("mogway.yaml", []byte(bad), &section{})
	if err == nil || !strings.Contains(err.Error(), "mogway.yaml:4: purge.allow[1]") {
		t.Errorf("Decode(bad CIDR) = %v, want mogway.yaml:4: purge.allow[1]: ...", err)
	}
	err = conf.Decode("mogway.yaml", []byte("purge:\n  tokn: x\n"), &section{})
	if err == nil || !strings.Contains(err.Error(), "purge.tokn") {
		t.Errorf("Decode(unknown field) = %v, want an error naming purge.tokn", err)
	}
}

// TestConfigExampleDefaults checks the defaults the gateway.purge block of config.example.yaml
// states against the accessors and constants the service applies them with.
func TestConfigExampleDefaults(t *testing.T) {
	t.Parallel()
	conftest.CheckDefaults(t, conftest.Section{File: "../config.example.yaml", Path: "gateway.purge"},
		func(name string, data []byte) (Config, error) {
			var c Config
			if err := conf.Decode(name, data, &c); err != nil {
				return Config{}, err
			}
			c.Path, c.NotFoundStatus = c.path(), c.notFoundStatus()
			c.JournalLimit, c.PeerConcurrency = c.journalLimit(), c.peerConcurrency()
			c.PeerTimeout = conf.Duration(c.PeerTimeout.Or(DefaultPeerTimeout))
			c.RetryMin = conf.Duration(c.RetryMin.Or(DefaultRetryMin))
			c.RetryMax = conf.Duration(c.RetryMax.Or(DefaultRetryMax))
			return c, nil
		})
}
