package storaged

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/conf/conftest"
)

const conf1s = conf.Duration(time.Second)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg    Config
		fields []string // fields named by the errors, in order
	}{
		{Config{}, nil},
		{Config{MgmtListen: "off", Listen: "127.0.0.1:80"}, nil},
		{Config{Listen: "nonsense"}, []string{"listen"}},
		{Config{MgmtListen: ":7500"}, []string{"mgmt_listen"}},
		{Config{MgmtListen: "x"}, []string{"mgmt_listen"}},
		{Config{Listen: "127.0.0.2:0", MgmtListen: "127.0.0.2:0"}, nil}, // kernel-chosen ports differ
		{Config{Docroot: "relative/dir"}, []string{"docroot"}},
		{Config{MaxBody: -1}, []string{"max_body"}},
		{Config{UsageInterval: conf.Duration(time.Millisecond)}, []string{"usage_interval"}},
		{Config{MaxConns: -3}, []string{"max_conns"}},
		{Config{MaxHeaderSize: 100}, []string{"max_header_size"}},
		{Config{MaxHeaderSize: 2 * conf.MiB}, []string{"max_header_size"}},
		{Config{MaxHeaderSize: 64 * conf.KiB}, nil},
		{Config{Listen: ":x:", Docroot: "x"}, []string{"listen", "docroot"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		fields, others := conf.FieldErrors(err)
		if len(others) > 0 {
			t.Fatalf("Validate(%+v): %v are not *conf.FieldError", tt.cfg, others)
		}
		var got []string
		for _, fe := range fields {
			got = append(got, fe.Field)
		}
		if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
			t.Errorf("Validate(%+v) fields = %v, want %v (err %v)", tt.cfg, got, tt.fields, err)
		}
	}
}

func TestConfigAddrs(t *testing.T) {
	var c Config
	if c.ListenAddr() != ":7500" || c.MgmtAddr() != ":7501" || !c.MgmtEnabled() {
		t.Errorf("zero Config: ListenAddr %q MgmtAddr %q", c.ListenAddr(), c.MgmtAddr())
	}
	c.MgmtListen = "off"
	if c.MgmtEnabled() || c.MgmtAddr() != "" {
		t.Errorf("mgmt_listen off: MgmtEnabled %v MgmtAddr %q", c.MgmtEnabled(), c.MgmtAddr())
	}
}

func TestNewChecksDocroot(t *testing.T) {
	if _, err := New(Config{Docroot: "/nonexistent/mogdata"}, nil); err == nil {
		t.Errorf("New with a missing docroot succeeded")
	}
	if _, err := New(Config{Docroot: "relative"}, nil); err == nil {
		t.Errorf("New with a relative docroot succeeded")
	}
}

// A dev<N> directory the node cannot write makes New fail, naming it; once writable, New succeeds.
func TestNewRefusesUnwritableDevice(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	docroot := t.TempDir()
	dev2 := filepath.Join(docroot, "dev2")
	for _, d := range []string{filepath.Join(docroot, "dev1"), dev2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dev2, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dev2, 0o755) })
	if _, err := New(Config{Docroot: docroot}, nil); err == nil || !strings.Contains(err.Error(), "device dev2 is not writable") {
		t.Errorf("New with a read-only dev2 = %v, want an error naming dev2", err)
	}
	if err := os.Chmod(dev2, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Docroot: docroot}, nil); err != nil {
		t.Errorf("New with dev2 writable again = %v, want nil", err)
	}
}

// TestConfigExampleDefaults checks the defaults the storaged section of config.example.yaml states
// against withDefaults.
func TestConfigExampleDefaults(t *testing.T) {
	t.Parallel()
	conftest.CheckDefaults(t, conftest.Section{File: "../config.example.yaml", Path: "storaged"},
		func(name string, data []byte) (Config, error) {
			var c Config
			if err := conf.Decode(name, data, &c); err != nil {
				return Config{}, err
			}
			return c.withDefaults(), nil
		})
}
