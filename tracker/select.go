package tracker

import (
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/worker"
)

// client is what a query knows of who asked: the peer IP (for altip selection) and whether it asked
// for the alternate zone (zone=alt).
type client struct {
	ip      net.IP
	altZone bool
}

// hostIP picks the address a client should use for h (spec 5.4): altip when the host has both altip
// and altmask and either the request said zone=alt or the client's IP is inside altmask.
func hostIP(h store.Host, c client) string {
	if h.AltIP == "" || h.AltMask == "" {
		return h.IP
	}
	if c.altZone {
		return h.AltIP
	}
	if c.ip != nil {
		if _, n, err := net.ParseCIDR(h.AltMask); err == nil && n.Contains(c.ip) {
			return h.AltIP
		}
	}
	return h.IP
}

// writeURL is the URL a fid is written to and deleted from on a device: the host's http_port.
func writeURL(h store.Host, devID int, fid int64, c client) string {
	return "http://" + net.JoinHostPort(hostIP(h, c), strconv.Itoa(h.HTTPPort)) + worker.FidPath(devID, fid)
}

// readURL is the URL a fid is read from: the host's http_get_port when set, else http_port.
func readURL(h store.Host, devID int, fid int64, c client) string {
	var buf [128]byte
	return string(appendReadURL(buf[:0], h, devID, fid, c))
}

// appendReadURL appends readURL(h, devID, fid, c) to dst.
func appendReadURL(dst []byte, h store.Host, devID int, fid int64, c client) []byte {
	port := h.HTTPPort
	if h.HTTPGetPort > 0 {
		port = h.HTTPGetPort
	}
	ip := hostIP(h, c)
	dst = append(dst, "http://"...)
	if strings.IndexByte(ip, ':') >= 0 { // as net.JoinHostPort brackets an IPv6 address
		dst = append(append(append(dst, '['), ip...), ']')
	} else {
		dst = append(dst, ip...)
	}
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(port), 10)
	return worker.AppendFidPath(dst, devID, fid)
}

// lockedRand is a random source shared by concurrent queries.
type lockedRand struct {
	mu sync.Mutex // guards r
	r  *rand.Rand
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// weightedOrder returns the indexes of weights in weighted random order (spec 5.4): items with weight
// <= 0 are dropped, the rest are drawn one at a time without replacement, each with probability
// weight / (sum of the remaining weights).
func weightedOrder(weights []float64, r interface{ Float64() float64 }) []int {
	return appendWeightedOrder(make([]int, 0, len(weights)), make([]int, 0, len(weights)), weights, r)
}

// appendWeightedOrder appends weightedOrder(weights, r) to out, using idx (empty, with room to
// reuse) as its scratch space.
func appendWeightedOrder(out, idx []int, weights []float64, r interface{ Float64() float64 }) []int {
	sum := 0.0
	for i, w := range weights {
		if w > 0 {
			idx = append(idx, i)
			sum += w
		}
	}
	for len(idx) > 0 {
		x := r.Float64() * sum
		pick := len(idx) - 1
		for j, i := range idx {
			if x < weights[i] {
				pick = j
				break
			}
			x -= weights[i]
		}
		i := idx[pick]
		out = append(out, i)
		sum -= weights[i]
		idx = append(idx[:pick], idx[pick+1:]...)
	}
	return out
}

// percentFree is 1 - used/total, or 0 when usage is unknown (such a device is never chosen).
func percentFree(d devInfo) float64 {
	total, used, known := d.usage()
	if !known || total <= 0 {
		return 0
	}
	return 1 - float64(used)/float64(total)
}

// chooseDestinations picks where a new file goes (spec 5.4): devices that can take new files and
// have room for size bytes (when given; if none has known room, those with unknown usage), sorted by
// percent free, the top 20 in weighted random order by 100 × percent free, then up to max of them on
// distinct hosts.
func chooseDestinations(devs []devInfo, size int64, max int, minFreeMB int64, r interface{ Float64() float64 }) []devInfo {
	cands := devs
	if size > 0 {
		var roomy, unknown []devInfo
		for _, d := range devs {
			total, used, known := d.usage()
			switch {
			case !known:
				unknown = append(unknown, d)
			case (total-used)*1024*1024 > size:
				roomy = append(roomy, d)
			}
		}
		cands = roomy
		if len(cands) == 0 {
			cands = unknown
		}
	}
	var ok []devInfo
	for _, d := range cands {
		if d.writable(minFreeMB) {
			ok = append(ok, d)
		}
	}
	sort.SliceStable(ok, func(i, j int) bool { return percentFree(ok[i]) > percentFree(ok[j]) })
	if len(ok) > 20 {
		ok = ok[:20]
	}
	weights := make([]float64, len(ok))
	for i, d := range ok {
		weights[i] = 100 * percentFree(d)
	}
	var out []devInfo
	usedHosts := map[int]bool{}
	for _, i := range weightedOrder(weights, r) {
		if len(out) == max {
			break
		}
		d := ok[i]
		if usedHosts[d.host.ID] {
			continue
		}
		usedHosts[d.host.ID] = true
		out = append(out, d)
	}
	return out
}

// readWeight is a device's weight for get_paths order (spec 5.4): the device weight column, with
// 0 read as 100 (so set_weight 0 does not stop reads). The Perl tracker prefers 102 - utilization
// when iostat reports a bare integer, which it practically never does; mogway's monitor does not
// collect utilization.
func readWeight(d devInfo) float64 {
	w := d.dev.Weight
	if w == 0 {
		w = 100
	}
	return float64(w)
}
