package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// maxAdminLines bounds an admin answer, so a peer that never sends the closing "." cannot make
// AdminCommand read without end.
const maxAdminLines = 100000

// AdminCommand sends one admin line ("!stats", "!version", "!jobs"; spec 2.7) to the tracker at
// addr on a connection of its own and returns the answer's lines, without the closing ".". Admin
// commands go to one tracker, not to a pool: each tracker answers for itself. timeout bounds the
// whole exchange, connect included.
func AdminCommand(ctx context.Context, addr, cmd string, timeout time.Duration) ([]string, error) {
	if !strings.HasPrefix(cmd, "!") || strings.ContainsAny(cmd, "\r\n") {
		return nil, fmt.Errorf("client: admin command %q: must be one line starting with !", cmd)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl) //nolint:errcheck // a failed deadline shows as a read error
	}
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", addr, cmd, err)
	}
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if l == "." {
			return lines, nil
		}
		if len(lines) == maxAdminLines {
			return nil, fmt.Errorf("%s: %s: more than %d lines", addr, cmd, maxAdminLines)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", addr, cmd, err)
	}
	return nil, fmt.Errorf("%s: %s: connection closed before the closing \".\": %w", addr, cmd, io.ErrUnexpectedEOF)
}
