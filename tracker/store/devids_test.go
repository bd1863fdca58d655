package store

import (
	"reflect"
	"testing"
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
		if got := JoinDevIDs(tc.ids); got != tc.text {
			t.Errorf("JoinDevIDs(%v) = %q, want %q", tc.ids, got, tc.text)
		}
		if got := SplitDevIDs(tc.text); !reflect.DeepEqual(got, tc.ids) {
			t.Errorf("SplitDevIDs(%q) = %v, want %v", tc.text, got, tc.ids)
		}
	}
	// Lists written by other trackers may carry spaces or junk; numbers are kept, the rest skipped.
	for in, want := range map[string][]int{
		"1, 2 ,3": {1, 2, 3},
		"1,,x,4":  {1, 4},
		",":       nil,
	} {
		if got := SplitDevIDs(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitDevIDs(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzSplitDevIDs(f *testing.F) {
	for _, s := range []string{"", "1", "3,1,12", " 7 ,x,", "-1,99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := SplitDevIDs(s)
		if again := SplitDevIDs(JoinDevIDs(ids)); !reflect.DeepEqual(again, ids) {
			t.Fatalf("SplitDevIDs(JoinDevIDs(%v)) = %v", ids, again)
		}
	})
}
