package testutil

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestMain plays the child of TestChild when asked: it writes the line it is given back, upper
// case, and exits with status 3 when its standard input says "fail", 0 when it ends.
func TestMain(m *testing.M) {
	if line := os.Getenv("TESTUTIL_CHILD"); line != "" {
		os.Stdout.WriteString(strings.ToUpper(line) + "\n")
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "fail" {
				os.Exit(3)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestChild(t *testing.T) {
	c := StartChild(t, "TESTUTIL_CHILD=hello")
	if got := c.ReadLine(t); got != "HELLO" {
		t.Errorf("ReadLine = %q, want %q", got, "HELLO")
	}
	c.Wait(t)

	// A child that fails fails Wait.
	failing := StartChild(t, "TESTUTIL_CHILD=x")
	failing.ReadLine(t)
	failing.stdin.Write([]byte("fail\n"))
	if err := failing.end(false); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("a child exiting with status 3 ended with %v", err)
	}
}
