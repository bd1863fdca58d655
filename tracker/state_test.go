package tracker

import (
	"errors"
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// TestMarkHung checks which wins between a query's hung mark on a host and the monitor's
// observations of its devices: the later one, by when the request or the probe started.
func TestMarkHung(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	seen := func(s int) observation { return observation{Reachable: true, Writable: true, At: at(s)} }
	tests := []struct {
		name     string
		obs      map[int]observation // by devid, before the mark
		markAt   int
		after    map[int]observation // by devid, after the mark
		wantDev1 string
		wantDev3 string // device 3 is on another host
	}{
		{"mark hides older probes", map[int]observation{1: seen(0), 3: seen(0)}, 5, nil, observedUnreachable, observedWriteable},
		{"mark on a device never seen", map[int]observation{3: seen(0)}, 5, nil, observedUnreachable, observedWriteable},
		{"newer probe lifts it", map[int]observation{1: seen(0), 3: seen(0)}, 5, map[int]observation{1: seen(6)}, observedWriteable, observedWriteable},
		{"probe from before the request does not", map[int]observation{1: seen(0), 3: seen(0)}, 5, map[int]observation{1: seen(4)}, observedUnreachable, observedWriteable},
	}
	for _, tt := range tests {
		s := newState(nil, 2)
		s.snap.deviceByID = map[int]store.Device{1: {ID: 1, HostID: 1}, 2: {ID: 2, HostID: 1}, 3: {ID: 3, HostID: 2}}
		for id, o := range tt.obs {
			s.Observe(id, o)
		}
		s.markHung(1, at(tt.markAt), errors.New("HEAD: timeout"))
		for id, o := range tt.after {
			s.Observe(id, o)
		}
		if got := observedState(s.observation(1)); got != tt.wantDev1 {
			t.Errorf("%s: dev1 observed %q, want %q", tt.name, got, tt.wantDev1)
		}
		if got := observedState(s.observation(2)); got != observedUnreachable {
			t.Errorf("%s: dev2 (same host, never probed since) observed %q, want %q", tt.name, got, observedUnreachable)
		}
		if got := observedState(s.observation(3)); got != tt.wantDev3 {
			t.Errorf("%s: dev3 (other host) observed %q, want %q", tt.name, got, tt.wantDev3)
		}
	}
}
