package worker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// usage is the part of a device's usage file the monitor needs, in KiB.
type usage struct {
	total, used int64
}

// parseUsage reads a mogstored usage file (spec 4.4): "key: value" lines. It needs positive `total`
// and `used`, as the Perl monitor does.
func parseUsage(b []byte) (usage, error) {
	var u usage
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimRight(k, " \t"), strings.TrimSpace(v)
		if k == "" || v == "" || !wordChars(k) {
			continue
		}
		var dst *int64
		switch k {
		case "total":
			dst = &u.total
		case "used":
			dst = &u.used
		default:
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return usage{}, fmt.Errorf("usage: bad %s %q", k, v)
		}
		*dst = n
	}
	if u.total <= 0 || u.used <= 0 { // a missing key leaves its field 0
		return usage{}, errors.New("usage: total and used must be present and positive")
	}
	return u, nil
}

func wordChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
