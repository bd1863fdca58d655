package testutil

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Child is the test binary run again as the peer of a test, in a process of its own, so that the
// kernel's counts for the test's process (ReadCalls) leave the peer's system calls out until the
// peer is waited for. The package's TestMain plays the peer when it finds the variables given to
// StartChild in its environment, and runs the tests otherwise.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader

	once sync.Once // ends the process, by Wait or when the test ends
	err  error     // what Wait returned
}

// StartChild runs the test binary again, running no test, with env ("NAME=value" pairs) added to
// its environment. A child not waited for (Wait) is killed when the test ends.
func StartChild(t testing.TB, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { c.end(true) }) //nolint:errcheck // the test is over
	return c
}

// Process returns the child's process, for a test that signals it (stops it, say).
func (c *Child) Process() *os.Process { return c.cmd.Process }

// ReadLine returns the next line the child writes to its standard output, without its newline. It
// fails the test, killing the child, when the output ends first.
func (c *Child) ReadLine(t testing.TB) string {
	t.Helper()
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("the child's output ended (%q, %v); the child: %v", line, err, c.end(true))
	}
	return strings.TrimSuffix(line, "\n")
}

// Wait closes the child's standard input, which tells a child reading it to exit, waits for the
// child to exit, and fails the test unless it exited with status 0.
func (c *Child) Wait(t testing.TB) {
	t.Helper()
	if err := c.end(false); err != nil {
		t.Fatalf("the child: %v", err)
	}
}

// end ends the child once, killing it first when kill is set, and returns how it exited.
func (c *Child) end(kill bool) error {
	c.once.Do(func() {
		c.stdin.Close()
		if kill {
			c.cmd.Process.Kill() //nolint:errcheck // it may have exited already
		}
		c.err = c.cmd.Wait()
	})
	return c.err
}
