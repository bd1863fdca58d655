package gateway

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// pathTargets orders a key's copies for the first try by power of two choices: of the first two
// healthy copies in the tracker's order, the less loaded node (fewer requests waiting, times its
// moving average of first-byte latency) leads; a node not heard from yet keeps its place; the rest
// keep the tracker's order, suspect nodes after healthy ones and nodes marked down last.
func TestPathTargetsPowerOfTwoChoices(t *testing.T) {
	const ms = int64(time.Millisecond)
	// node describes one copy's node: its latency average (0: not heard from yet), requests
	// waiting, and whether it is suspect or marked down.
	type node struct {
		lat, inflight int64
		suspect, down bool
	}
	for _, tc := range []struct {
		name  string
		nodes []node // copies on nodes a, b, c, ... in the tracker's order
		want  string
	}{
		{"second lighter leads", []node{{lat: 10 * ms}, {lat: 5 * ms}, {lat: ms}}, "bac"},
		{"first lighter stays", []node{{lat: 5 * ms}, {lat: 10 * ms}}, "ab"},
		{"equal loads keep the order", []node{{lat: 5 * ms}, {lat: 5 * ms}}, "ab"},
		{"second not heard from", []node{{lat: 10 * ms}, {}}, "ab"},
		{"first not heard from", []node{{}, {lat: ms}}, "ab"},
		{"only the first two compete", []node{{lat: 5 * ms}, {lat: 10 * ms}, {lat: ms}}, "abc"},
		{"waiting requests weigh", []node{{lat: 10 * ms}, {lat: 2 * ms, inflight: 9}}, "ab"},
		{"waiting requests weigh on the first", []node{{lat: 10 * ms, inflight: 3}, {lat: 15 * ms}}, "ba"},
		{"a node marked down does not compete", []node{{lat: ms, down: true}, {lat: 10 * ms}, {lat: 5 * ms}}, "cba"},
		{"a suspect node does not compete", []node{{lat: ms, suspect: true}, {lat: 10 * ms}, {lat: 5 * ms}}, "cba"},
		{"one healthy copy", []node{{lat: 10 * ms}, {lat: ms, down: true}}, "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{nodes: newNodes(nodeOptions{}), log: slog.New(slog.DiscardHandler)}
			st := &state{cfg: Config{}.withDefaults()}
			now := time.Unix(1000, 0)
			name := map[string]string{}
			var paths []string
			for i, nd := range tc.nodes {
				addr := "127.0.0." + string(rune('2'+i)) + ":7500"
				name[addr] = string(rune('a' + i))
				paths = append(paths, "http://"+addr+fidPath(int64(70+i)))
				n := s.nodes.get(addr)
				n.latMean.Store(nd.lat)
				n.inflight.Store(nd.inflight)
				if nd.suspect {
					n.stuck.Store(1)
				}
				if nd.down {
					n.fail(now, st.cfg.Storage) // max_fails 1: down for fail_timeout
				}
			}
			var got strings.Builder
			for _, tg := range s.pathTargets(st, newPathEntry(paths, nil, now.Add(time.Minute)), now) {
				got.WriteString(name[tg.node.addr])
			}
			if got.String() != tc.want {
				t.Errorf("pathTargets order = %q, want %q", got.String(), tc.want)
			}
		})
	}
}
