package purge

import (
	"slices"
	"strings"
	"sync"
)

// call is one Target method call seen by a recorder.
type call struct {
	Op   string // "uri", "prefix", "all" or "tag"
	Arg  string
	Soft bool
}

// recorder is a Target over a map of cached URI paths to sizes that records every call.
type recorder struct {
	mu      sync.Mutex // guards entries and calls
	entries map[string]int64
	tags    map[string][]string // tag -> paths stored with it
	calls   []call
}

var _ TagPurger = (*recorder)(nil)

// tag stores paths (already in r) with tag.
func (r *recorder) tag(tag string, paths ...string) *recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tags == nil {
		r.tags = map[string][]string{}
	}
	r.tags[tag] = append(r.tags[tag], paths...)
	return r
}

func (r *recorder) PurgeTag(tag string, soft bool) (int, int64) {
	r.mu.Lock()
	paths := r.tags[tag]
	r.mu.Unlock()
	return r.remove(func(p string) bool { return slices.Contains(paths, p) }, call{"tag", tag, soft})
}

var _ Target = (*recorder)(nil)

func newRecorder(paths ...string) *recorder {
	r := &recorder{entries: map[string]int64{}}
	for i, p := range paths {
		r.entries[p] = int64(100 * (i + 1))
	}
	return r
}

func (r *recorder) remove(match func(string) bool, c call) (int, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	n, b := 0, int64(0)
	for p, size := range r.entries {
		if match(p) {
			n++
			b += size
			if !c.Soft {
				delete(r.entries, p)
			}
		}
	}
	return n, b
}

func (r *recorder) Purge(group string, soft bool) (int, int64) {
	return r.remove(func(p string) bool { return p == group }, call{"uri", group, soft})
}

func (r *recorder) PurgePrefix(prefix string, soft bool) (int, int64) {
	return r.remove(func(p string) bool { return strings.HasPrefix(p, prefix) }, call{"prefix", prefix, soft})
}

func (r *recorder) PurgeAll(soft bool) (int, int64) {
	return r.remove(func(string) bool { return true }, call{"all", "", soft})
}

func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) Has(p string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.entries[p]
	return ok
}
