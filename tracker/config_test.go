package tracker

import (
	"testing"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/conf/conftest"
)

// TestConfigExampleDefaults checks the defaults the tracker section of config.example.yaml states
// against the defaults New applies: withDefaults, the HTTP listener's address, the keys the workers
// block takes from this section (workerConfig) and the replica's defaults. The workers block's own
// defaults are checked by package worker.
func TestConfigExampleDefaults(t *testing.T) {
	t.Parallel()
	conftest.CheckDefaults(t, conftest.Section{
		File:      "../config.example.yaml",
		Path:      "tracker",
		Delegated: []string{"workers"},
	}, func(name string, data []byte) (Config, error) {
		var c Config
		if err := conf.Decode(name, data, &c); err != nil {
			return Config{}, err
		}
		d := c.withDefaults()
		if d.HTTPListen == "" {
			d.HTTPListen = d.HTTPListenAddr()
		}
		d.Workers = workerConfig(d)
		if d.Replicate.Enabled() {
			d.Replicate = d.Replicate.WithDefaults()
		}
		return d, nil
	})
}
