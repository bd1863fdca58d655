package tracker

import (
	"testing"
	"time"
)

// TestCountCommandAllocs: counting an answered command is on every query's path, so it must not
// copy the command name into a new string when the name is a known command.
func TestCountCommandAllocs(t *testing.T) {
	s := &Server{}
	s.initMetrics()
	line, reply := "get_paths domain=d key=k", []byte("OK paths=0\r\n")
	s.countCommand(line, reply, time.Millisecond) // creates the ok series
	if got := testing.AllocsPerRun(100, func() { s.countCommand(line, reply, time.Millisecond) }); got != 0 {
		t.Errorf("countCommand(%q) allocated %v times per call, want 0", line, got)
	}
}
