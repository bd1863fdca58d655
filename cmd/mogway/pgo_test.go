package main

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"testing"
)

// TestBuildUsesProfile: a plain `go build` of this package (as make build, make run and go install
// do) optimises with default.pgo, the profile `make pgo` writes (bench/README.md).
func TestBuildUsesProfile(t *testing.T) {
	if _, err := os.Stat("default.pgo"); err != nil {
		t.Fatalf("default.pgo: %v (make pgo writes it)", err)
	}
	info, err := buildinfo.ReadFile(mogwayBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if s.Key == "-pgo" {
			if filepath.Base(s.Value) != "default.pgo" {
				t.Errorf("built with -pgo=%s, want default.pgo", s.Value)
			}
			return
		}
	}
	t.Errorf("built without a profile; build settings: %v", info.Settings)
}
