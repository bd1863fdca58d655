package main

import (
	"strings"
	"testing"
)

func TestSelectScenarios(t *testing.T) {
	all := []scenario{{name: "cache hit 4 KiB"}, {name: "cache hit 1 MiB"}, {name: "upload through the gateway"}, {name: "failover"}}
	for _, tc := range []struct {
		only string
		want string
	}{
		{"", "cache hit 4 KiB,cache hit 1 MiB,upload through the gateway,failover"},
		{"upload", "upload through the gateway"},
		{"Cache, FAILOVER", "cache hit 4 KiB,cache hit 1 MiB,failover"},
		{"1 mib,cache", "cache hit 4 KiB,cache hit 1 MiB"},
	} {
		got, err := selectScenarios(all, tc.only)
		var names []string
		for _, s := range got {
			names = append(names, s.name)
		}
		if err != nil || strings.Join(names, ",") != tc.want {
			t.Errorf("selectScenarios(%q) = %q, %v; want %q", tc.only, names, err, tc.want)
		}
	}
	if _, err := selectScenarios(all, "nothing"); err == nil || !strings.Contains(err.Error(), "failover") {
		t.Errorf("selectScenarios(nothing) = %v, want an error listing the names", err)
	}
}
