package store

import (
	"strconv"
	"strings"
)

// JoinDevIDs writes device ids as a comma list, "3,1,12": the form of the tempfile table's devids
// column and of the protocol's devids replies.
func JoinDevIDs(ids []int) string {
	var b strings.Builder
	for i, n := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// SplitDevIDs parses a comma list of device ids, skipping anything that is not a number.
func SplitDevIDs(s string) []int {
	if s == "" {
		return nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}
