package dbaddr

import (
	"os/exec"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Addr
	}{
		{"sqlite:/var/lib/mogway/tracker.db", Addr{Driver: SQLite, Path: "/var/lib/mogway/tracker.db"}},
		{"sqlite:var/tracker.db", Addr{Driver: SQLite, Path: "var/tracker.db"}},
		{"sqlite:///var/lib/mogway/tracker.db", Addr{Driver: SQLite, Path: "/var/lib/mogway/tracker.db"}},
		{"sqlite:/tmp/a b?c.db", Addr{Driver: SQLite, Path: "/tmp/a b?c.db"}},
		{"mysql://user:pass@tcp(127.0.0.1:3306)/mogilefs", Addr{Driver: MySQL, DSN: "user:pass@tcp(127.0.0.1:3306)/mogilefs"}},
		{"mysql:user:pass@tcp(127.0.0.1:3306)/mogilefs", Addr{Driver: MySQL, DSN: "user:pass@tcp(127.0.0.1:3306)/mogilefs"}},
		{"mysql://user:pass@db.example:3306/mogilefs?timeout=5s", Addr{Driver: MySQL, DSN: "user:pass@tcp(db.example:3306)/mogilefs?timeout=5s"}},
		{"mysql://mog:p@ss/w@10.0.0.1/mogilefs", Addr{Driver: MySQL, DSN: "mog:p@ss/w@tcp(10.0.0.1)/mogilefs"}},
		{"mysql://user@unix(/run/mysqld/mysqld.sock)/mogilefs", Addr{Driver: MySQL, DSN: "user@unix(/run/mysqld/mysqld.sock)/mogilefs"}},
		{"mysql://db.example/mogilefs", Addr{Driver: MySQL, DSN: "tcp(db.example)/mogilefs"}},
		{"mysql://user:pass@/mogilefs", Addr{Driver: MySQL, DSN: "user:pass@/mogilefs"}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "/var/lib/tracker.db", "postgres://x/y", "sqlite:", "sqlite://relative.db", "sqlite://",
		"mysql:", "mysql://user:pass@tcp(127.0.0.1:3306)/", "mysql://user:secret@tcp(127.0.0.1:3306)",
		"mysql://user:secret@tcp(127.0.0.1:3306/db",
	} {
		got, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, got)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) error %q shows the password", in, err)
		}
		if !strings.Contains(err.Error(), "sqlite:/path/to/tracker.db") && !strings.Contains(err.Error(), "NUL") {
			t.Errorf("Parse(%q) error %q does not say which forms are accepted", in, err)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mysql://mog:secret@tcp(10.0.0.1:3306)/mogilefs", "mysql://mog:xxxxx@tcp(10.0.0.1:3306)/mogilefs"},
		{"mysql://mog:p@ss/w@10.0.0.1/mogilefs?timeout=5s", "mysql://mog:xxxxx@tcp(10.0.0.1)/mogilefs?timeout=5s"},
		{"mysql://mog@unix(/run/mysqld.sock)/mogilefs", "mysql://mog@unix(/run/mysqld.sock)/mogilefs"},
		{"mysql://mog:@tcp(h)/d", "mysql://mog:@tcp(h)/d"},
		{"mysql://db.example/mogilefs", "mysql://tcp(db.example)/mogilefs"},
		{"sqlite:///var/x.db", "sqlite:/var/x.db"},
	} {
		a, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := a.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"sqlite:/var/lib/mogway/tracker.db", "sqlite:///x", "mysql://u:p@tcp(h:1)/d?timeout=1s",
		"mysql:u:p@h:1/d", "mysql://u:p@/d", "mysql://@@//", "mysql:(", "sqlite:\x00", "mysql://u@foo/d",
		"mysql://u@x(a)b/d", "mysql://u@x(a/d", "mysql://u/%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := Parse(in)
		if rest, ok := strings.CutPrefix(in, "mysql:"); ok {
			// Whatever the driver takes, with a database name, Parse takes too: a configuration
			// check must never refuse a store the tracker could open.
			dsn := withProtocol(strings.TrimPrefix(rest, "//"))
			if cfg, derr := mysqldrv.ParseDSN(dsn); derr == nil && cfg.DBName != "" && err != nil {
				t.Fatalf("Parse(%q) = %v, but the driver takes %q", in, err, dsn)
			}
			// And what Parse takes, the driver refuses only for a parameter's value.
			if _, derr := mysqldrv.ParseDSN(dsn); err == nil && derr != nil && !strings.Contains(dsn, "?") {
				t.Fatalf("Parse(%q) = %+v, but the driver refuses it: %v", in, a, derr)
			}
		}
		if err != nil {
			return
		}
		switch a.Driver {
		case SQLite:
			if a.Path == "" {
				t.Fatalf("Parse(%q) = %+v: empty path", in, a)
			}
		case MySQL:
		default:
			t.Fatalf("Parse(%q) = %+v: unknown driver", in, a)
		}
		_ = a.String()
	})
}

// The tracker package checks its `db` setting with dbaddr; neither may link a database driver.
func TestNoDriverImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list imports with")
	}
	for _, pkg := range []string{"github.com/mogway/mogway/tracker/store/dbaddr", "github.com/mogway/mogway/tracker"} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for dep := range strings.Lines(string(out)) {
			dep = strings.TrimSpace(dep)
			// database/sql itself may come in (the Prometheus collectors package links it for its
			// DB stats collector); the drivers must not.
			if strings.HasPrefix(dep, "github.com/go-sql-driver/") || strings.HasPrefix(dep, "modernc.org/sqlite") {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
