package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/client"
)

// poolTracker adapts a *client.Pool to Tracker and times each command (metrics).
type poolTracker struct {
	p   *client.Pool
	lat *trackerLatency
}

var _ Tracker = poolTracker{}

// newPoolTracker builds the tracker pool of a configuration.
func newPoolTracker(cfg Config, log *slog.Logger, lat *trackerLatency) (poolTracker, error) {
	p, err := client.NewPool(client.Config{
		Trackers:    cfg.Trackers,
		DialTimeout: cfg.Timeouts.TrackerConnect,
		Timeout:     conf.Duration(cfg.Timeouts.TrackerRead),
		// The pool's own default (8) suits a command-line tool; a gateway runs a lookup for every
		// request that misses the path cache, and a lookup finding no idle connection dials one.
		MaxIdlePerTracker:  cfg.Limits.MaxIdlePerTracker,
		MaxConnsPerTracker: cfg.Limits.MaxConnsPerTracker,
	}, log)
	if err != nil {
		return poolTracker{}, err
	}
	return poolTracker{p: p, lat: lat}, nil
}

func (t poolTracker) GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error) {
	defer t.lat.observe(tcGetPaths, time.Now())
	return t.p.GetPaths(ctx, domain, key, client.GetPathsOptions{NoVerify: noverify})
}

func (t poolTracker) CreateOpen(ctx context.Context, domain, key, class string) (Open, error) {
	defer t.lat.observe(tcCreateOpen, time.Now())
	o, err := t.p.CreateOpen(ctx, domain, key, class)
	if err != nil {
		return Open{}, err
	}
	out := Open{Fid: o.Fid, Dests: make([]Dest, len(o.Dests))}
	for i, d := range o.Dests {
		out.Dests[i] = Dest{DevID: d.DevID, Path: d.Path}
	}
	return out, nil
}

func (t poolTracker) CreateClose(ctx context.Context, c Close) error {
	defer t.lat.observe(tcCreateClose, time.Now())
	return t.p.CreateClose(ctx, client.CloseRequest{Domain: c.Domain, Key: c.Key, Class: c.Class,
		Fid: c.Fid, DevID: c.DevID, Path: c.Path, Size: c.Size})
}

func (t poolTracker) Delete(ctx context.Context, domain, key string) error {
	defer t.lat.observe(tcDelete, time.Now())
	return t.p.Delete(ctx, domain, key)
}

// Close closes the pool's idle connections.
func (t poolTracker) Close() error { return t.p.Close() }

// Stats is the pool's state for /status.
func (t poolTracker) Stats() any { return t.p.Stats() }
