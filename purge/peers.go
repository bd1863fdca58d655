package purge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// peer is another gateway purges are forwarded to.
type peer struct {
	name string // as configured
	base string // scheme://host:port/peer_path

	mu       sync.Mutex // guards failures, retryAt and lastErr
	failures int        // consecutive failed deliveries
	retryAt  time.Time  // no delivery before this (monotonic clock); zero after a success
	lastErr  error
}

// signatureSlack is added to the peer timeout to date the signatures sent to peers, so a peer whose
// clock is a little ahead still accepts them.
const signatureSlack = time.Minute

// maxPeerReply bounds the reply read from a peer.
const maxPeerReply = 64 << 10

// backingOff reports whether p failed recently and should not be tried before its retry time.
func (p *peer) backingOff(now time.Time) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.retryAt), p.lastErr
}

func (s *Service) peerFailed(p *peer, err error) {
	s.stats.peerFail.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures++
	p.lastErr = err
	cfg := &s.cur.Load().cfg
	d := cfg.RetryMin.Or(DefaultRetryMin)
	maxD := cfg.RetryMax.Or(DefaultRetryMax)
	for i := 1; i < p.failures && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	p.retryAt = time.Now().Add(d)
	if p.failures == 1 || p.failures%10 == 0 {
		s.log.Warn("purge peer unreachable", "peer", p.name, "failures", p.failures, "retry_in", d, "err", err)
	}
}

func (s *Service) peerSucceeded(p *peer) {
	s.stats.peerOK.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		s.log.Info("purge peer reachable again", "peer", p.name, "after_failures", p.failures)
	}
	p.failures, p.retryAt, p.lastErr = 0, time.Time{}, nil
}

// send delivers one purge to p and returns what the peer purged. Only a 200 reply carrying a purge
// result counts as accepted.
func (s *Service) send(ctx context.Context, p *peer, key string, soft bool) (NodeResult, error) {
	cfg := &s.cur.Load().cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.PeerTimeout.Or(DefaultPeerTimeout))
	defer cancel()
	u, err := url.Parse(p.base)
	if err != nil {
		return NodeResult{}, err
	}
	q := url.Values{}
	if tag, ok := strings.CutPrefix(key, TagPrefix); ok {
		u.Path += "/" // <peer_path>/?tag=T: net/http muxes redirect <peer_path> alone
		q.Set(QueryTag, tag)
	} else {
		u.Path += key
	}
	if soft {
		q.Set(QuerySoft, "1")
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, "PURGE", u.String(), nil)
	if err != nil {
		return NodeResult{}, err
	}
	req.Header.Set(HeaderForwarded, s.name)
	if tok := cfg.peerToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if sec := cfg.peerSecret(); sec != "" {
		exp := s.now().Add(cfg.PeerTimeout.Or(DefaultPeerTimeout) + signatureSlack)
		req.Header.Set(HeaderSignature, Sign(sec, "PURGE", key, exp))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return NodeResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerReply))
	if err != nil {
		return NodeResult{}, fmt.Errorf("reading reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return NodeResult{}, fmt.Errorf("peer replied %s: %s", resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	var res Result
	if err := json.Unmarshal(body, &res); err != nil || res.Key != key {
		return NodeResult{}, fmt.Errorf("peer replied 200 without a purge result for %q", key)
	}
	return NodeResult{Node: p.name, Status: NodeOK, Purged: res.Purged, Bytes: res.Bytes}, nil
}

// fanOut forwards a purge applied locally to every peer, at most peer_concurrency at a time. A peer
// that does not accept it (or is still backing off after earlier failures) gets it journaled.
// Deliveries are bounded by peer_timeout but not cancelled with ctx: once a purge is applied here, a
// client that hangs up must not leave the peers half-purged.
func (s *Service) fanOut(ctx context.Context, key string, soft bool) []NodeResult {
	ctx = context.WithoutCancel(ctx)
	out := make([]NodeResult, len(s.peers))
	gate := make(chan struct{}, s.cur.Load().cfg.peerConcurrency())
	var wg sync.WaitGroup
	for i, p := range s.peers {
		wg.Go(func() {
			gate <- struct{}{}
			defer func() { <-gate }()
			out[i] = s.forward(ctx, p, key, soft)
		})
	}
	wg.Wait()
	return out
}

func (s *Service) forward(ctx context.Context, p *peer, key string, soft bool) NodeResult {
	var err error
	if off, last := p.backingOff(time.Now()); off {
		err = fmt.Errorf("not tried: peer is backing off after an error: %v", last)
	} else {
		var nr NodeResult
		if nr, err = s.send(ctx, p, key, soft); err == nil {
			s.peerSucceeded(p)
			if s.journal.hasPending(p.name) {
				s.wake() // the peer is back: deliver its backlog now
			}
			return nr
		}
		s.peerFailed(p, err)
	}
	nr := NodeResult{Node: p.name, Status: NodeQueued, Error: err.Error()}
	added, jerr := s.journal.add(p.name, key, soft, s.now())
	if jerr != nil {
		s.stats.journalErrs.Add(1)
		s.log.Error("purge journal write failed; peer will keep serving purged entries", "peer", p.name, "key", key, "err", jerr)
		nr.Status = NodeFailed
		nr.Error = err.Error() + "; " + jerr.Error()
		return nr
	}
	if added {
		s.stats.journaled.Add(1)
		s.stats.pending.Store(int64(s.journal.len()))
	}
	s.wake()
	return nr
}

func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run delivers journaled purges to their peers until ctx ends, retrying each peer with exponential
// backoff (retry_min doubling up to retry_max) until it accepts. It returns nil when ctx ends; call it
// once per Service. Without peers it only waits for ctx.
func (s *Service) Run(ctx context.Context) error {
	if s.journal == nil {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer s.client.CloseIdleConnections()
	for {
		s.deliverDue(ctx)
		if wait, ok := s.nextDue(time.Now()); ok {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-timer.C:
		}
	}
}

// deliverDue delivers the backlog of every peer that has one and is not backing off.
func (s *Service) deliverDue(ctx context.Context) {
	gate := make(chan struct{}, s.cur.Load().cfg.peerConcurrency())
	var wg sync.WaitGroup
	now := time.Now()
	for _, p := range s.peers {
		if off, _ := p.backingOff(now); off || !s.journal.hasPending(p.name) {
			continue
		}
		wg.Go(func() {
			gate <- struct{}{}
			defer func() { <-gate }()
			defer func() {
				if r := recover(); r != nil {
					s.peerFailed(p, fmt.Errorf("panic delivering purges: %v", r))
					s.log.Error("purge delivery panicked", "peer", p.name, "panic", r)
				}
			}()
			s.deliverPeer(ctx, p)
		})
	}
	wg.Wait()
}

// deliverPeer sends p its journaled purges, oldest first, stopping at the first failure.
func (s *Service) deliverPeer(ctx context.Context, p *peer) {
	for _, e := range s.journal.forPeer(p.name) {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.send(ctx, p, e.Key, e.Soft); err != nil {
			if ctx.Err() == nil {
				s.peerFailed(p, err)
			}
			return
		}
		s.peerSucceeded(p)
		if err := s.journal.delivered(e.ID); err != nil {
			// The purge reached the peer; only the record is missing, so it may be sent again.
			s.stats.journalErrs.Add(1)
			s.log.Error("purge journal write failed", "peer", p.name, "key", e.Key, "err", err)
			s.peerFailed(p, err)
			return
		}
		s.stats.pending.Store(int64(s.journal.len()))
		s.log.Info("purge delivered from journal", "peer", p.name, "key", e.Key, "queued_at", e.At)
	}
}

// nextDue returns how long until the earliest peer with a backlog may be retried; ok is false when
// no peer has a backlog.
func (s *Service) nextDue(now time.Time) (wait time.Duration, ok bool) {
	for _, p := range s.peers {
		if !s.journal.hasPending(p.name) {
			continue
		}
		p.mu.Lock()
		d := max(p.retryAt.Sub(now), 0)
		p.mu.Unlock()
		if !ok || d < wait {
			wait, ok = d, true
		}
	}
	return wait, ok
}

// Flush tries at once to deliver every journaled purge, ignoring backoff, and returns how many
// remain pending (0 without peers). Run does the same on its own schedule; Flush is for tools and
// shutdown.
func (s *Service) Flush(ctx context.Context) (pending int, err error) {
	if s.journal == nil {
		return 0, nil
	}
	for _, p := range s.peers {
		p.mu.Lock()
		p.retryAt = time.Time{}
		p.mu.Unlock()
	}
	s.deliverDue(ctx)
	return s.journal.len(), ctx.Err()
}
