package sqlstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

func TestDevIDList(t *testing.T) {
	for _, tc := range []struct {
		ids  []int
		text string
	}{
		{nil, ""},
		{[]int{1}, "1"},
		{[]int{3, 1, 12}, "3,1,12"},
	} {
		if got := joinInts(tc.ids); got != tc.text {
			t.Errorf("joinInts(%v) = %q, want %q", tc.ids, got, tc.text)
		}
		if got := splitInts(tc.text); !reflect.DeepEqual(got, tc.ids) {
			t.Errorf("splitInts(%q) = %v, want %v", tc.text, got, tc.ids)
		}
	}
	// Lists written by other trackers may carry spaces or junk; numbers are kept, the rest skipped.
	for in, want := range map[string][]int{
		"1, 2 ,3": {1, 2, 3},
		"1,,x,4":  {1, 4},
		",":       nil,
	} {
		if got := splitInts(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitInts(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzSplitInts(f *testing.F) {
	for _, s := range []string{"", "1", "3,1,12", " 7 ,x,", "-1,99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := splitInts(s)
		if again := splitInts(joinInts(ids)); !reflect.DeepEqual(again, ids) {
			t.Fatalf("splitInts(joinInts(%v)) = %v", ids, again)
		}
	})
}

func TestLeaseEnd(t *testing.T) {
	for _, tc := range []struct {
		now   int64
		lease time.Duration
		want  int64
	}{
		{100, 30 * time.Second, 130},
		{100, 1500 * time.Millisecond, 102},
		{100, 0, 101},
		{100, -time.Second, 101},
		{store.NeverRetry - 5, time.Hour, store.NeverRetry - 1},
	} {
		if got := leaseEnd(tc.now, tc.lease); got != tc.want {
			t.Errorf("leaseEnd(%d, %v) = %d, want %d", tc.now, tc.lease, got, tc.want)
		}
	}
}
