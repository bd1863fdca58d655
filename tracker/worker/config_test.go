package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/conf/conftest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" = valid
	}{
		{"zero is every default", Config{}, ""},
		{"short test intervals", Config{MonitorInterval: conf.Duration(50 * time.Millisecond), PollInterval: conf.Duration(20 * time.Millisecond)}, ""},
		{"monitor too fast", Config{MonitorInterval: conf.Duration(time.Millisecond)}, "monitor_interval"},
		{"negative workers", Config{ReplicateWorkers: -1}, "replicate_workers"},
		{"mindevcount too high", Config{DefaultMinDevCount: 256}, "default_mindevcount"},
		{"lease shorter than copy timeout", Config{Lease: conf.Duration(10 * time.Second), CopyTimeout: conf.Duration(time.Minute)}, "lease"},
		{"tempfile age too short", Config{TempfileMaxAge: conf.Duration(time.Millisecond)}, "tempfile_max_age"},
		{"tempfile age just under 1s", Config{TempfileMaxAge: conf.Duration(999 * time.Millisecond)}, "tempfile_max_age"},
		{"tempfile age 1s", Config{TempfileMaxAge: conf.Duration(time.Second)}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
			}
			continue
		}
		var fe *conf.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Fix == "" {
			t.Errorf("%s: Validate() = %v, want a FieldError for %q with a fix", tt.name, err, tt.field)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	if d.MonitorInterval.D() != 2500*time.Millisecond || d.ReapDelay.D() != 16*time.Second ||
		d.TempfileMaxAge.D() != time.Hour || d.MinFreeSpace != 100*conf.MiB || d.DefaultMinDevCount != 2 {
		t.Errorf("Config{}.withDefaults() = %+v, want the Perl tracker's defaults", d)
	}
	if err := (&Config{BatchSize: -5}).Validate(); err == nil || !strings.Contains(err.Error(), "batch_size") {
		t.Errorf("Validate(batch_size=-5) = %v, want a batch_size error", err)
	}
}

// TestConfigExampleDefaults checks the defaults the tracker.workers block of config.example.yaml
// states against withDefaults. The tracker fills the keys this block shares with its own section
// from there (tracker's workerConfig) before withDefaults runs, so claims on those keys are left
// to the tracker's test.
func TestConfigExampleDefaults(t *testing.T) {
	t.Parallel()
	const shared = "left out, it is taken from the tracker section (tracker's workerConfig)"
	conftest.CheckDefaults(t, conftest.Section{
		File: "../../config.example.yaml",
		Path: "tracker.workers",
		Skip: map[string]string{
			"tracker.workers.side_channel_port":   shared,
			"tracker.workers.tempfile_max_age":    shared,
			"tracker.workers.node_timeout":        shared,
			"tracker.workers.min_free_space":      shared,
			"tracker.workers.default_mindevcount": shared,
		},
	}, func(name string, data []byte) (Config, error) {
		var c Config
		if err := conf.Decode(name, data, &c); err != nil {
			return Config{}, err
		}
		return c.withDefaults(), nil
	})
}
