package dsn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store/dbaddr"
)

// Parse adds the driver's checks of its own parameters to dbaddr's shape check.
func TestParseDriverParams(t *testing.T) {
	const v = "mysql://u:secret@tcp(h:1)/d?timeout=abc"
	if _, err := dbaddr.Parse(v); err != nil {
		t.Fatalf("dbaddr.Parse(%q): %v, want it accepted (the driver checks parameter values)", v, err)
	}
	_, err := Parse(v)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), dbaddr.Formats) {
		t.Fatalf("Parse(%q) = %v, want an error that hides the password and lists the forms", v, err)
	}
	if s, err := Parse("mysql://u:p@tcp(h:1)/d?timeout=5s"); err != nil || s.DSN != "u:p@tcp(h:1)/d?timeout=5s" {
		t.Fatalf("Parse(timeout=5s) = %+v, %v", s, err)
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
