package worker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mogway/mogway/tracker/store"
)

// verdict is a replication policy's answer for one fid.
type verdict int

const (
	satisfied verdict = iota // enough copies, well spread
	tooHappy                 // more copies than needed: remove one
	needCopy                 // copy to the first of ideal, else desperate
	tempFail                 // more copies are needed but there is nowhere to put them now
)

func (v verdict) String() string {
	return [...]string{"satisfied", "too_happy", "need_copy", "temp_fail"}[v]
}

// decision is the policy's verdict with, for needCopy, the candidate destinations in preference order.
type decision struct {
	verdict   verdict
	ideal     []int
	desperate []int
}

// policy is a parsed class replpolicy: MultipleHosts(N) or MultipleDevices(N); min 0 means the
// class mindevcount.
type policy struct {
	byDevice bool
	min      int
}

// parsePolicy reads a replpolicy column: "" and "MultipleHosts()" are the default.
func parsePolicy(s string) (policy, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return policy{}, nil
	}
	name, arg, ok := strings.Cut(s, "(")
	if !ok || !strings.HasSuffix(arg, ")") {
		return policy{}, fmt.Errorf("replication policy %q: want Name(N)", s)
	}
	arg = strings.TrimSpace(strings.TrimSuffix(arg, ")"))
	var p policy
	switch strings.TrimSpace(name) {
	case "MultipleHosts":
	case "MultipleDevices":
		p.byDevice = true
	default:
		return policy{}, fmt.Errorf("replication policy %q is not supported; use MultipleHosts() or MultipleDevices()", s)
	}
	if arg != "" {
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return policy{}, fmt.Errorf("replication policy %q: bad count %q", s, arg)
		}
		p.min = n
	}
	return p, nil
}

// Copies is the number of copies class c wants, as replication counts them: the N of its
// MultipleHosts(N) or MultipleDevices(N) policy when given, else its mindevcount (also for a
// policy it cannot read, which replication then treats as MultipleHosts()).
func Copies(c store.Class) int {
	if p, err := parsePolicy(c.ReplPolicy); err == nil && p.min > 0 {
		return p.min
	}
	return c.MinDevCount
}

// decide applies the MultipleHosts rules (spec 5.5) to a fid held on the non-dead devices on.
// minDevCount is the class mindevcount; failed lists destinations that failed this round.
func (p policy) decide(v *view, on []int, minDevCount int, failed map[int]bool, randFloat func() float64) decision {
	min := minDevCount
	if p.min > 0 {
		min = p.min
	}
	hostOf := func(dev int) int {
		if p.byDevice {
			return dev
		}
		return v.devs[dev].HostID
	}
	holds := make(map[int]bool, len(on))
	hostsOn := make(map[int]bool)
	for _, d := range on {
		holds[d] = true
		hostsOn[hostOf(d)] = true
	}
	totalHosts := make(map[int]bool)
	nonDead := 0
	for _, d := range v.devs {
		if d.Status == "alive" {
			if _, ok := v.hosts[d.HostID]; ok {
				totalHosts[hostOf(d.ID)] = true
			}
		}
		if d.Status != "dead" {
			nonDead++
		}
	}
	switch {
	case min == 1 && len(on) == 1:
		return decision{verdict: satisfied}
	case len(hostsOn) > min || len(on) > min:
		return decision{verdict: tooHappy}
	case len(hostsOn) == min:
		return decision{verdict: satisfied}
	case len(hostsOn) >= len(totalHosts) && len(on) >= min:
		return decision{verdict: satisfied}
	case len(on) >= 2 && len(on) == nonDead:
		return decision{verdict: satisfied}
	}

	var cands []int
	for id := range v.devs {
		if !holds[id] && !failed[id] && v.writable(id) {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return decision{verdict: tempFail}
	}
	sort.Slice(cands, func(i, j int) bool {
		pi, pj := v.percentFree(cands[i]), v.percentFree(cands[j])
		if pi != pj {
			return pi > pj
		}
		return cands[i] < cands[j]
	})
	var ideal, desperate []int
	for _, id := range cands {
		if len(hostsOn) < len(totalHosts) && hostsOn[hostOf(id)] {
			desperate = append(desperate, id)
		} else {
			ideal = append(ideal, id)
		}
	}
	if len(on) >= min && len(ideal) == 0 {
		return decision{verdict: tempFail}
	}
	weight := func(id int) float64 { return 100 * v.percentFree(id) }
	d := decision{
		verdict:   needCopy,
		ideal:     weightedOrder(top(ideal, 20), weight, randFloat),
		desperate: weightedOrder(top(desperate, 20), weight, randFloat),
	}
	if len(d.ideal) == 0 && len(d.desperate) == 0 {
		return decision{verdict: tempFail}
	}
	return d
}

func top(s []int, n int) []int {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// weightedOrder draws items without replacement, each with probability weight / (sum of the remaining
// weights); items of weight <= 0 are dropped (spec 5.4).
func weightedOrder(items []int, weight func(int) float64, randFloat func() float64) []int {
	type wi struct {
		id int
		w  float64
	}
	var rest []wi
	sum := 0.0
	for _, id := range items {
		if w := weight(id); w > 0 {
			rest = append(rest, wi{id, w})
			sum += w
		}
	}
	out := make([]int, 0, len(rest))
	for len(rest) > 0 {
		r := randFloat() * sum
		i := 0
		for ; i < len(rest)-1; i++ {
			if r < rest[i].w {
				break
			}
			r -= rest[i].w
		}
		out = append(out, rest[i].id)
		sum -= rest[i].w
		rest = append(rest[:i], rest[i+1:]...)
	}
	return out
}
