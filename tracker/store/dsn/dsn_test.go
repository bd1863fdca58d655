package dsn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"sqlite:/var/lib/mogway/tracker.db", Spec{Driver: SQLite, Path: "/var/lib/mogway/tracker.db"}},
		{"sqlite:var/tracker.db", Spec{Driver: SQLite, Path: "var/tracker.db"}},
		{"sqlite:///var/lib/mogway/tracker.db", Spec{Driver: SQLite, Path: "/var/lib/mogway/tracker.db"}},
		{"sqlite:/tmp/a b?c.db", Spec{Driver: SQLite, Path: "/tmp/a b?c.db"}},
		{"mysql://user:pass@tcp(127.0.0.1:3306)/mogilefs", Spec{Driver: MySQL, DSN: "user:pass@tcp(127.0.0.1:3306)/mogilefs"}},
		{"mysql:user:pass@tcp(127.0.0.1:3306)/mogilefs", Spec{Driver: MySQL, DSN: "user:pass@tcp(127.0.0.1:3306)/mogilefs"}},
		{"mysql://user:pass@db.example:3306/mogilefs?timeout=5s", Spec{Driver: MySQL, DSN: "user:pass@tcp(db.example:3306)/mogilefs?timeout=5s"}},
		{"mysql://mog:p@ss/w@10.0.0.1/mogilefs", Spec{Driver: MySQL, DSN: "mog:p@ss/w@tcp(10.0.0.1)/mogilefs"}},
		{"mysql://user@unix(/run/mysqld/mysqld.sock)/mogilefs", Spec{Driver: MySQL, DSN: "user@unix(/run/mysqld/mysqld.sock)/mogilefs"}},
		{"mysql://db.example/mogilefs", Spec{Driver: MySQL, DSN: "tcp(db.example)/mogilefs"}},
		{"mysql://user:pass@/mogilefs", Spec{Driver: MySQL, DSN: "user:pass@/mogilefs"}},
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
	s, err := Parse("mysql://mog:secret@tcp(10.0.0.1:3306)/mogilefs")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "mysql://mog:xxxxx@tcp(10.0.0.1:3306)/mogilefs"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	s, err = Parse("sqlite:///var/x.db")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "sqlite:/var/x.db"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"sqlite:/var/lib/mogway/tracker.db", "sqlite:///x", "mysql://u:p@tcp(h:1)/d?timeout=1s",
		"mysql:u:p@h:1/d", "mysql://u:p@/d", "mysql://@@//", "mysql:(", "sqlite:\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		switch s.Driver {
		case SQLite:
			if s.Path == "" {
				t.Fatalf("Parse(%q) = %+v: empty path", in, s)
			}
		case MySQL:
			cfg, err := mysqldrv.ParseDSN(s.DSN)
			if err != nil || cfg.DBName == "" {
				t.Fatalf("Parse(%q) = %+v, which the driver rejects (%v) or names no database", in, s, err)
			}
		default:
			t.Fatalf("Parse(%q) = %+v: unknown driver", in, s)
		}
		_ = s.String()
	})
}

func TestOpenSQLite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new", "dir", "tracker.db")
	s, err := Open(context.Background(), "sqlite:"+p, nil)
	if err != nil {
		t.Fatalf("Open(sqlite:%s): %v", p, err)
	}
	defer s.Close()
	if _, err := s.CreateDomain(context.Background(), "d"); err != nil {
		t.Fatalf("CreateDomain: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("database file: %v", err)
	}
}

func TestOpenMySQL(t *testing.T) {
	dsn := os.Getenv("MOGWAY_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("MOGWAY_TEST_MYSQL_DSN is unset: no MySQL/MariaDB to test against")
	}
	// The server DSN names no database: Open must refuse it rather than guess.
	if _, err := Open(context.Background(), "mysql://"+dsn, nil); err == nil {
		t.Fatalf("Open(mysql DSN without a database) succeeded")
	}
}
