package testutil

import (
	"testing"
	"time"
)

func TestArmCounter(t *testing.T) {
	ac := &ArmCounter{Listener: Listen(t, "127.0.0.1:0")}
	accepted := make(chan error, 1)
	go func() {
		c, err := ac.Accept()
		if err == nil {
			at := time.Now().Add(time.Minute)
			c.SetDeadline(at)      //nolint:errcheck // counted either way
			c.SetReadDeadline(at)  //nolint:errcheck // counted either way
			c.SetWriteDeadline(at) //nolint:errcheck // counted either way
			c.Close()
		}
		accepted <- err
	}()
	Dial(t, ac.Addr().String()).Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if got := ac.Arms(); got != 3 {
		t.Errorf("Arms = %d after three deadlines, want 3", got)
	}
}
