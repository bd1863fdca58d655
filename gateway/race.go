package gateway

import (
	"errors"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// attempt is the outcome of one round trip of a fetch: response headers read, or an error.
type attempt struct {
	t     target
	i     int                // index of t in the fetch's targets
	resp  *fasthttp.Response // nil when err is set
	err   error
	took  time.Duration
	hedge bool // sent as a hedge while an earlier attempt was still waiting
}

// racer hands out a fetch's attempts one outcome at a time. Without hedging each attempt runs in the
// caller's goroutine, one target after the other. With hedging too, an attempt started when no other
// is waiting runs in the caller's goroutine, until its hedge delay (runNext); when the only attempt
// waiting has gone its hedge delay without its answer, it goes on in a goroutine of its own, its node
// becomes suspect and, if the route's budget allows, the next target is tried alongside it, in its own
// goroutine (if not, the budget is asked again after each further delay); outcomes come in the order
// they arrive. Attempts still waiting when the fetch is done are losers: finish drops
// their answers with their connections (never back to the pool half-read).
type racer struct {
	s       *Server
	fr      *fetchRequest
	ph      passHeaders
	hedging bool
	hedged  bool // a hedge was sent
	next    int  // next target to try

	results  chan attempt
	fresh    chan []target // the tracker's answer to a refresh (see refresh), nil when none runs
	timer    *time.Timer
	pending  uint64 // attempts waiting, by target index
	timed    uint64 // attempts whose hedge delay has passed
	stuck    uint64 // attempts that made their node suspect
	armedFor int    // index of the attempt the timer runs for, -1 when stopped
}

// maxRaced is the most targets a hedged fetch tries (a bit each in racer's masks); fetches with
// more targets are not hedged.
const maxRaced = 64

// racers are finished racers, reused with their results channel and timer: a GET on a hedged route
// then allocates neither.
var racers sync.Pool

func (s *Server) newRacer(fr *fetchRequest, ph passHeaders) *racer {
	h := &fr.route.hedge
	r, _ := racers.Get().(*racer)
	if r == nil {
		r = &racer{}
	}
	// An unhedged fetch keeps the pooled results channel too, for the next hedged one.
	*r = racer{s: s, fr: fr, ph: ph, armedFor: -1, results: r.results, timer: r.timer,
		hedging: !h.off && h.budget != nil && len(fr.targets) <= maxRaced}
	if r.hedging {
		now := fr.now
		if now.IsZero() {
			now = s.now()
		}
		h.budget.request(now)
		if cap(r.results) < len(fr.targets) {
			r.results = make(chan attempt, max(len(fr.targets), racerResults))
		}
	}
	return r
}

// racerResults is the smallest results channel a racer is given, so that a pooled one serves the
// usual fetches of a few targets.
const racerResults = 4

// stop tries no further target; attempts already waiting are still reported.
func (r *racer) stop() { r.next = len(r.fr.targets) }

// rest are the targets that may continue the answer's body: those not tried yet, then those whose
// attempt is still waiting (a loser's answer is dropped, but its copy may serve a Range later).
func (r *racer) rest() []target {
	untried := r.fr.targets[r.next:]
	if r.pending == 0 {
		return untried
	}
	out := slices.Clip(untried)
	for p := r.pending; p != 0; p &= p - 1 {
		out = append(out, r.fr.targets[bits.TrailingZeros64(p)])
	}
	return out
}

// more reports whether another outcome may still come.
func (r *racer) more() bool { return r.pending != 0 || r.next < len(r.fr.targets) }

// result returns the next outcome, or false when every target was tried and reported.
func (r *racer) result() (attempt, bool) {
	if !r.hedging {
		if r.next >= len(r.fr.targets) {
			return attempt{}, false
		}
		r.next++
		return r.s.try(r.fr.targets[r.next-1], r.next-1, false, r.fr.head, r.ph), true
	}
	if r.pending == 0 {
		if r.next >= len(r.fr.targets) {
			return attempt{}, false
		}
		if at, done := r.runNext(); done {
			return at, true
		}
	}
	for {
		var fire <-chan time.Time
		if bits.OnesCount64(r.pending) == 1 {
			if i := bits.TrailingZeros64(r.pending); r.timed&(1<<i) == 0 {
				r.arm(i)
				fire = r.timer.C
			}
		}
		select {
		case at := <-r.results:
			r.pending &^= 1 << at.i
			if r.armedFor == at.i {
				r.timer.Stop()
				r.armedFor = -1
			}
			if r.stuck&(1<<at.i) != 0 {
				r.stuck &^= 1 << at.i
				at.t.node.stuck.Add(-1)
			}
			return at, true
		case <-fire:
			i := r.armedFor
			r.armedFor = -1
			r.delayPassed(i)
		case ts := <-r.fresh:
			r.fresh = nil
			r.add(ts)
			if i := bits.TrailingZeros64(r.pending); bits.OnesCount64(r.pending) == 1 && r.timed&(1<<i) != 0 {
				r.hedge(i)
			}
		}
	}
}

// runNext runs the attempt on the next target on the caller's goroutine until its hedge delay
// (node.get's early deadline): done reports that it ended by then, with at its outcome. One that did
// not goes on in a goroutine of its own, from where it stopped, and its delay has passed
// (delayPassed): a hedge may be out.
func (r *racer) runNext() (at attempt, done bool) {
	i := r.next
	r.next++
	t := r.fr.targets[i]
	tr := r.s.begin(t, i, false)
	rq := getRequest{uri: t.uri, head: r.fr.head, ph: r.ph, timeout: r.s.cfgNow().Timeouts.StorageFirstByte.D(),
		early: tr.start.Add(r.fr.route.hedge.delay(t.node)), now: tr.start}
	err := t.node.get(&rq, tr.resp)
	slow, ok := err.(*slowGet)
	if !ok && err != errEarlyConnect {
		return tr.end(err), true
	}
	r.pending |= 1 << i
	// The goroutine may outlive r (a loser, see finish): it takes what it needs now, never r.
	s, head, ph, out := r.s, r.fr.head, r.ph, r.results
	go func() {
		if slow != nil {
			out <- tr.end(slow.resume())
		} else {
			// Nothing was sent: connecting outlasted the hedge delay. Start over, unhurried.
			out <- tr.end(s.roundTrip(tr.t, head, ph, tr.resp))
		}
	}()
	r.delayPassed(i)
	return attempt{}, false
}

// delayPassed is attempt i, the only one waiting, gone its hedge delay without an answer: its node
// becomes suspect, the tracker is asked again when no target is left untried, and a hedge is sent.
func (r *racer) delayPassed(i int) {
	if r.stuck&(1<<i) == 0 {
		r.stuck |= 1 << i
		r.fr.targets[i].node.stuck.Add(1)
	}
	if r.next >= len(r.fr.targets) && r.fr.refresh {
		r.refresh()
	}
	r.hedge(i)
}

// hedge sends the next target alongside attempt i, stuck past its hedge delay, if the budget allows.
// A target marked down (max_fails within fail_timeout) gets no hedge: it stays a last resort for
// failover after errors, as in nginx, and targets lists the marked-down ones last.
func (r *racer) hedge(i int) {
	now := r.s.now()
	switch {
	case r.next >= len(r.fr.targets) || !r.fr.targets[r.next].node.available(now, r.fr.targets[r.next].health):
		r.timed |= 1 << i
	case r.fr.route.hedge.budget.take(now):
		r.timed |= 1 << i
		r.hedged = true
		r.s.stats.hedges.Add(1)
		r.launch(true)
	default:
		// Refused: ask the budget again after another delay, as the window moves on.
		r.timed &^= 1 << i
		r.s.stats.hedgeBudgetExhausted.Add(1)
	}
}

// refresh asks the tracker again, in its own goroutine, for the copies of a key whose every cached
// copy was tried and is stuck. A cached get_paths answer may name only the copy that now hangs (it
// was the only one readable when the answer was cached, while another node hung) although the tracker
// knows more: issue 11's acceptance run failed every client for that. The answer comes on r.fresh,
// which is buffered, so the goroutine never waits for a racer that has finished.
func (r *racer) refresh() {
	r.fr.refresh = false
	r.fresh = make(chan []target, 1)
	go func(src targetSource, out chan<- []target) {
		ts, _, _ := src.again()
		out <- ts
	}(r.fr.source, r.fresh)
}

// add appends the targets of ts that the fetch does not have yet, up to maxRaced in all.
func (r *racer) add(ts []target) {
	for _, t := range ts {
		if len(r.fr.targets) == maxRaced {
			return
		}
		if !slices.ContainsFunc(r.fr.targets, func(o target) bool { return o.node == t.node && o.uri == t.uri }) {
			r.fr.targets = append(r.fr.targets, t)
		}
	}
}

// arm starts the hedge timer for attempt i, unless it runs for it already.
func (r *racer) arm(i int) {
	if r.armedFor == i {
		return
	}
	d := r.fr.route.hedge.delay(r.fr.targets[i].node)
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	r.armedFor = i
}

// launch starts an attempt on the next target in its own goroutine.
func (r *racer) launch(hedge bool) {
	i := r.next
	r.next++
	r.pending |= 1 << i
	// The goroutine may outlive r (a loser, see finish): it takes what it needs now.
	go func(s *Server, t target, head bool, ph passHeaders, out chan<- attempt) {
		out <- s.try(t, i, hedge, head, ph)
	}(r.s, r.fr.targets[i], r.fr.head, r.ph, r.results)
}

// logHedge records in the access record whether a hedge was sent and, when at answered, whether the
// hedge won.
func (r *racer) logHedge(rec *accessRecord, at *attempt) {
	switch {
	case at != nil && at.hedge:
		rec.hedge = "won"
	case r.hedged:
		rec.hedge = "sent"
	}
}

// finish drops the losers: attempts still waiting once the fetch has its answer or gave up. Their
// answers are released with their connections closed, and a loser that failed counts against its
// node's health as any failed attempt does. r must not be used after it: it goes back to racers (its
// results channel only when no loser will still send on it).
func (r *racer) finish() {
	if r.timer != nil {
		r.timer.Stop() // a stopped timer delivers nothing stale after a Reset (Go 1.23 timers)
	}
	n, stuck, results, s := bits.OnesCount64(r.pending), r.stuck, r.results, r.s
	if n > 0 {
		r.results = nil
	}
	r.s, r.fr, r.ph = nil, nil, passHeaders{}
	racers.Put(r)
	if n == 0 {
		return
	}
	s.stats.hedgesCancelled.Add(int64(n))
	go func() {
		for range n {
			at := <-results
			if stuck&(1<<at.i) != 0 {
				at.t.node.stuck.Add(-1)
			}
			if at.err != nil {
				at.t.failed(s.now(), at.err)
				continue
			}
			abandon(at.resp)
		}
	}()
}

// try sends one GET or HEAD to t and reads its response headers, keeping t's node's in-flight count
// and first-byte latency (see node.observe).
func (s *Server) try(t target, i int, hedge, head bool, ph passHeaders) attempt {
	tr := s.begin(t, i, hedge)
	return tr.end(s.roundTrip(t, head, ph, tr.resp))
}

// trip is an attempt under way, from begin to end.
type trip struct {
	t     target
	i     int
	hedge bool
	start time.Time
	resp  *fasthttp.Response
}

// begin starts an attempt on t: it counts in its node's in-flight requests until end.
func (s *Server) begin(t target, i int, hedge bool) trip {
	t.node.inflight.Add(1)
	return trip{t: t, i: i, hedge: hedge, start: time.Now(), resp: fasthttp.AcquireResponse()}
}

// end is the outcome of the attempt's round trip, err: its node's counts and first-byte latency
// are updated.
func (tr trip) end(err error) attempt {
	t, resp := tr.t, tr.resp
	took := time.Since(tr.start)
	t.node.inflight.Add(-1)
	t.node.requests.Add(1)
	// The latency of answers that carry the entity, and of timeouts; a 404 or 5xx fails over
	// anyway and says little about how fast the node reads.
	if err == nil && resp.StatusCode() < 400 || err != nil && classify(err) == failTimeout && !errors.Is(err, fasthttp.ErrNoFreeConns) {
		t.node.observe(took)
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		resp = nil
	}
	return attempt{t: t, i: tr.i, resp: resp, err: err, took: took, hedge: tr.hedge}
}
