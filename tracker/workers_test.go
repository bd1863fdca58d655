package tracker

import (
	"testing"

	"github.com/mogway/mogway/internal/conf"
)

// The workers: section inherits the keys it shares with the tracker section, including the
// storage nodes' side-channel port (a changed tracker.side_channel_port once did not reach the
// workers' digest requests).
func TestWorkerConfigInheritsSharedKeys(t *testing.T) {
	var cfg Config
	cfg.SideChannelPort = 17501
	cfg.TempfileMaxAge = conf.Duration(90e9)
	cfg.NodeTimeout = conf.Duration(7e9)
	cfg.MinFreeSpace = 5 * conf.MiB
	cfg.DefaultMinDevCount = 3
	wc := workerConfig(cfg)
	if wc.SideChannelPort != 17501 || wc.TempfileMaxAge != cfg.TempfileMaxAge || wc.NodeTimeout != cfg.NodeTimeout || wc.MinFreeSpace != cfg.MinFreeSpace ||
		wc.DefaultMinDevCount != 3 {
		t.Errorf("workerConfig = %+v, want the tracker's shared keys", wc)
	}
	cfg.Workers.SideChannelPort = 7600
	if got := workerConfig(cfg).SideChannelPort; got != 7600 {
		t.Errorf("workerConfig with workers.side_channel_port 7600 = %d, want 7600", got)
	}
}
