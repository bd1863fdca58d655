package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/testutil"
)

// mariadbServer is a private mariadbd that a test may stop and start again on the same data
// directory and port, apart from the shared server of MOGWAY_TEST_MYSQL_DSN.
type mariadbServer struct {
	bin, dir, port, pass string
	cmd                  *exec.Cmd
	done                 chan error
}

// findProgram looks for the first of names in PATH and the sbin directories.
func findProgram(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
			if st, err := os.Stat(filepath.Join(d, n)); err == nil && st.Mode()&0o111 != 0 {
				return filepath.Join(d, n)
			}
		}
	}
	return ""
}

// startMariaDB initialises a data directory in t.TempDir and starts mariadbd on a free loopback
// port, with a user mogway that has a random password; it is killed at t.Cleanup. The test is
// skipped where `make test` would have no MariaDB either (MOGWAY_TEST_MYSQL_DSN unset) or where
// mariadbd is not installed.
func startMariaDB(t *testing.T) *mariadbServer {
	t.Helper()
	clustertest.MySQLDSN(t) // skips without a MariaDB for the suite
	bin, install := findProgram("mariadbd", "mysqld"), findProgram("mariadb-install-db", "mysql_install_db")
	if bin == "" || install == "" {
		t.Skip("mariadbd or mariadb-install-db is not installed: cannot start a private MariaDB to restart")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var b [12]byte
	rand.Read(b[:])
	m := &mariadbServer{bin: bin, dir: t.TempDir(), pass: "t" + hex.EncodeToString(b[:])}
	out, err := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"), "--user="+u.Username,
		"--skip-test-db", "--auth-root-authentication-method=socket").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	init := fmt.Sprintf("CREATE USER IF NOT EXISTS 'mogway'@'127.0.0.1' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO 'mogway'@'127.0.0.1';\nCREATE DATABASE IF NOT EXISTS mogilefs;\n", m.pass)
	if err := os.WriteFile(filepath.Join(m.dir, "init.sql"), []byte(init), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t, "127.0.0.1:0")
	_, m.port, _ = net.SplitHostPort(ln.Addr().String())
	ln.Close()
	m.start(t)
	t.Cleanup(func() { m.kill(t) })
	return m
}

// dsn is the --db value of the database mogilefs on the server.
func (m *mariadbServer) dsn() string {
	return "mysql://mogway:" + m.pass + "@tcp(127.0.0.1:" + m.port + ")/mogilefs?timeout=2s"
}

// start runs mariadbd and returns once it answers queries.
func (m *mariadbServer) start(t *testing.T) {
	t.Helper()
	u, _ := user.Current()
	m.cmd = exec.Command(m.bin, "--no-defaults", "--user="+u.Username, "--datadir="+filepath.Join(m.dir, "data"),
		"--socket="+filepath.Join(m.dir, "mysqld.sock"), "--pid-file="+filepath.Join(m.dir, "mysqld.pid"),
		"--bind-address=127.0.0.1", "--port="+m.port, "--skip-name-resolve",
		"--init-file="+filepath.Join(m.dir, "init.sql"), "--log-error="+filepath.Join(m.dir, "error.log"),
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=48M", "--skip-log-bin",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci")
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.cmd.Wait() }()
	cfg, _ := mysqldrv.ParseDSN(m.dsn()[len("mysql://"):])
	conn, _ := mysqldrv.NewConnector(cfg)
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(waitTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case err := <-m.done:
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			t.Fatalf("mariadbd exited during start-up: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd did not answer within %v: %v", waitTimeout, err)
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// kill stops mariadbd with SIGKILL, as a crash or a power cut would, and waits for it.
func (m *mariadbServer) kill(t *testing.T) {
	t.Helper()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// TestE2EMariaDBRestartUnderLoad kills the tracker's MariaDB during a stream of uploads and starts
// it again: meanwhile uploads fail (the tracker answers ERR and stays up), afterwards they succeed
// again without restarting the tracker, and every upload acknowledged before, during or after the
// outage is there with its exact bytes.
func TestE2EMariaDBRestartUnderLoad(t *testing.T) {
	t.Parallel()
	m := startMariaDB(t)
	c := startE2ECluster(t, m.dsn(), [2]string{"127.0.0.93", "127.0.0.94"})
	tr := "--trackers=" + c.trackerAddr
	stream := startUploads(t, tr)
	stream.waitFor(t, "20 acknowledged uploads", func(us []upload) bool { return len(us) >= 20 })

	m.kill(t)
	down := len(stream.snapshot())
	stream.waitFor(t, "uploads to fail while MariaDB is down", func(us []upload) bool {
		failed := 0
		for _, u := range us[down:] {
			if u.acked.IsZero() {
				failed++
			}
		}
		return failed >= 3
	})
	if r := trackerCommand(t, c.trackerAddr, "create_open domain=photos&key=while-down&fid=0&multi_dest=1"); !strings.HasPrefix(r, "ERR ") {
		t.Errorf("create_open while MariaDB is down = %q, want ERR", r)
	}
	m.start(t)
	up := len(stream.snapshot())
	stream.waitFor(t, "uploads to succeed again after the restart", func(us []upload) bool {
		ok := 0
		for _, u := range us[up:] {
			if !u.acked.IsZero() {
				ok++
			}
		}
		return ok >= 10
	})
	uploads := stream.end()
	if c.tracker.exited {
		t.Fatalf("the tracker exited; log:\n%s", c.tracker.stderr.String())
	}
	var acked, failed int
	for _, u := range uploads {
		if u.acked.IsZero() {
			failed++
			continue
		}
		acked++
		checkStored(t, tr, u, "acknowledged")
	}
	t.Logf("%d uploads acknowledged and stored, %d refused while MariaDB was down", acked, failed)
}
