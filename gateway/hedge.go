package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// Hedge configures hedged reads: when the copy or server tried for a GET or HEAD has not sent its
// response headers (and a body read whole) within a delay, the same request goes to the next one
// too and the first answer is served. PUT and DELETE are never hedged.
type Hedge struct {
	// Delay is "auto" (from each node's recent first-byte latency, see hedgeDelay), a duration such as
	// "50ms", or "off". Default "auto".
	Delay string `yaml:"delay"`
	// Budget is the most extra upstream requests hedges may add, as a percentage of the route's
	// requests over the last 10 seconds ("10%"); a few hedges are always allowed (hedgeFloor).
	// Default "10%".
	Budget string `yaml:"budget"`
}

const (
	defaultHedgeDelay  = "auto"
	defaultHedgeBudget = "10%"

	// Bounds and factor of an automatic hedge delay.
	hedgeMin    = 20 * time.Millisecond
	hedgeMax    = time.Second
	hedgeFactor = 2
	// hedgeInitial is the automatic delay of a node with no latency sample yet.
	hedgeInitial = 100 * time.Millisecond

	// The hedge budget counts requests over hedgeSlots slots of one second each.
	hedgeSlots = 10
	// hedgeFloor hedges are allowed in any window whatever the percentage, so a quiet route can
	// still hedge around a hung node (Envoy keeps a similar minimum for its retry budget).
	hedgeFloor = 3
)

// withDefaults fills h's empty fields from def (the gateway-wide setting), then from the defaults.
func (h Hedge) withDefaults(def Hedge) Hedge {
	if h.Delay == "" {
		h.Delay = def.Delay
	}
	if h.Budget == "" {
		h.Budget = def.Budget
	}
	if h.Delay == "" {
		h.Delay = defaultHedgeDelay
	}
	if h.Budget == "" {
		h.Budget = defaultHedgeBudget
	}
	return h
}

// Validate checks the delay and budget; fields are named relative to the hedge block.
func (h Hedge) Validate() error {
	if _, err := parseHedgeDelay(h.Delay); err != nil {
		return conf.Field("delay", `write "auto", a duration such as 50ms, or "off"`, "%v", err)
	}
	if _, err := parseHedgeBudget(h.Budget); err != nil {
		return conf.Field("budget", "write a percentage such as 10%", "%v", err)
	}
	return nil
}

// parseHedgeDelay returns the fixed delay, 0 for "auto" (or empty), -1 for "off".
func parseHedgeDelay(s string) (time.Duration, error) {
	switch s {
	case "", "auto":
		return 0, nil
	case "off":
		return -1, nil
	}
	d, err := conf.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return d, nil
}

// parseHedgeBudget returns a percentage from 0 to 100 ("" is the default).
func parseHedgeBudget(s string) (int, error) {
	if s == "" {
		s = defaultHedgeBudget
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || !strings.HasSuffix(s, "%") || n < 0 || n > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
	}
	return n, nil
}

// hedgePolicy is a route's compiled Hedge.
type hedgePolicy struct {
	off    bool
	fixed  time.Duration // 0: automatic per node
	budget *hedgeBudget
}

func compileHedge(h Hedge) hedgePolicy {
	d, _ := parseHedgeDelay(h.Delay)     // validated
	pct, _ := parseHedgeBudget(h.Budget) // validated
	return hedgePolicy{off: d < 0, fixed: max(d, 0), budget: &hedgeBudget{pct: pct}}
}

// delay is how long an attempt on n may go without response headers before a hedge is sent.
func (p *hedgePolicy) delay(n *node) time.Duration {
	if p.fixed > 0 {
		return p.fixed
	}
	return n.hedgeDelay()
}

// hedgeBudget caps hedges at a percentage of a route's requests over a sliding window of
// hedgeSlots seconds. It is safe for concurrent use.
type hedgeBudget struct {
	pct int

	mu    sync.Mutex // guards slots
	slots [hedgeSlots]budgetSlot
}

type budgetSlot struct {
	sec          int64 // the second the slot counts, as Unix time
	reqs, hedges int64
}

func (b *hedgeBudget) slot(now time.Time) *budgetSlot {
	sec := now.Unix()
	sl := &b.slots[sec%hedgeSlots]
	if sl.sec != sec {
		*sl = budgetSlot{sec: sec}
	}
	return sl
}

// request counts one request of the route.
func (b *hedgeBudget) request(now time.Time) {
	b.mu.Lock()
	b.slot(now).reqs++
	b.mu.Unlock()
}

// take reports whether one more hedge fits the budget, and counts it when it does.
func (b *hedgeBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var reqs, hedges int64
	sec := now.Unix()
	for i := range b.slots {
		if sl := &b.slots[i]; sec-sl.sec < hedgeSlots {
			reqs += sl.reqs
			hedges += sl.hedges
		}
	}
	if b.pct == 0 || (hedges >= hedgeFloor && (hedges+1)*100 > int64(b.pct)*reqs) {
		return false
	}
	b.slot(now).hedges++
	return true
}
