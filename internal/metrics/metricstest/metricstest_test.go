package metricstest

import (
	"fmt"
	"testing"
)

// errRecorder is a testing.TB that keeps what Errorf reports instead of failing the test.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Helper() {}
func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckMoves(t *testing.T) {
	before := Parse(t, []byte("# TYPE hits counter\nhits{kind=\"a\"} 1\nhits{kind=\"b\"} 5\n"))
	after := Parse(t, []byte("# TYPE hits counter\nhits{kind=\"a\"} 4\nhits{kind=\"b\"} 5\n"))
	if got := Deltas(before, after)("hits", "kind", "a"); got != 3 {
		t.Errorf("Deltas(hits{a}) = %v, want 3", got)
	}
	r := &errRecorder{TB: t}
	CheckMoves(r, before, after, []Move{
		{Name: "hits", Labels: []string{"kind", "a"}, Want: 3},
		{Name: "hits", Labels: []string{"kind", "b"}, Want: 0},
		{Name: "hits", Want: 3},
		{Name: "hits", Labels: []string{"kind", "b"}, Want: 1},
	})
	want := []string{"hits[kind b] moved by 0, want 1"}
	if fmt.Sprint(r.errs) != fmt.Sprint(want) {
		t.Errorf("CheckMoves reported %q, want %q", r.errs, want)
	}
}
