// Package dsn opens the tracker's metadata store from the one-string form of the tracker's --db
// flag (and the tracker section's `db` setting):
//
//	sqlite:/var/lib/mogway/tracker.db          SQLite file (absolute path)
//	sqlite:var/tracker.db                      SQLite file (relative to the working directory)
//	sqlite:///var/lib/mogway/tracker.db        the same, URL style
//	mysql://user:pass@tcp(127.0.0.1:3306)/mogilefs?timeout=5s
//	mysql:user:pass@tcp(127.0.0.1:3306)/mogilefs
//	mysql://user:pass@db.example:3306/mogilefs  (host:port without tcp(...) means TCP)
//	mysql://user:pass@unix(/run/mysqld/mysqld.sock)/mogilefs
//
// After "mysql:" or "mysql://" comes a github.com/go-sql-driver/mysql DSN; its parameters
// (timeout, tls, charset, ...) pass through. It lives apart from package store because it
// imports both implementations, which import store.
package dsn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// Drivers named by Spec.Driver.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// Spec is a parsed --db value.
type Spec struct {
	Driver string // SQLite or MySQL
	// Path is the SQLite file (SQLite only).
	Path string
	// DSN is the go-sql-driver/mysql DSN, always with an explicit protocol (MySQL only).
	DSN string
}

// String returns the value in canonical form with any MySQL password replaced by "xxxxx", for logs.
func (s Spec) String() string {
	switch s.Driver {
	case SQLite:
		return "sqlite:" + s.Path
	case MySQL:
		cfg, err := mysqldrv.ParseDSN(s.DSN)
		if err != nil {
			return "mysql:(invalid)"
		}
		if cfg.Passwd != "" {
			cfg.Passwd = "xxxxx"
		}
		return "mysql://" + cfg.FormatDSN()
	}
	return ""
}

// errFormats is appended to every parse error, so the operator sees what is accepted.
const errFormats = `want "sqlite:/path/to/tracker.db" or "mysql://user:pass@tcp(host:port)/dbname"`

// Parse checks a --db value and splits it into driver and address.
func Parse(v string) (Spec, error) {
	switch {
	case strings.HasPrefix(v, "sqlite:"):
		p := strings.TrimPrefix(v, "sqlite:")
		if strings.HasPrefix(p, "//") {
			p = strings.TrimPrefix(p, "//")
			if !strings.HasPrefix(p, "/") {
				return Spec{}, fmt.Errorf("db %q: the URL form takes an absolute path (sqlite:///var/lib/...); %s", v, errFormats)
			}
		}
		if p == "" {
			return Spec{}, fmt.Errorf("db %q: no file path; %s", v, errFormats)
		}
		if strings.ContainsRune(p, 0) {
			return Spec{}, fmt.Errorf("db %q: the path contains a NUL byte", v)
		}
		return Spec{Driver: SQLite, Path: p}, nil
	case strings.HasPrefix(v, "mysql:"):
		rest := strings.TrimPrefix(strings.TrimPrefix(v, "mysql:"), "//")
		rest = withProtocol(rest)
		cfg, err := mysqldrv.ParseDSN(rest)
		if err != nil {
			return Spec{}, fmt.Errorf("db %s: %v; %s", redact(v), err, errFormats)
		}
		if cfg.DBName == "" {
			return Spec{}, fmt.Errorf("db %s: no database name after the last \"/\"; %s", redact(v), errFormats)
		}
		return Spec{Driver: MySQL, DSN: rest}, nil
	}
	return Spec{}, fmt.Errorf("db %s: unknown store type; %s", redact(v), errFormats)
}

// withProtocol turns "user:pass@host:port/db" into "user:pass@tcp(host:port)/db"; a DSN that
// already names its protocol, or has no address, is returned as is. Like the driver, it takes the
// last "/" as the start of the database name and the last "@" before it as the end of the
// credentials, so passwords may contain "@" and "/".
func withProtocol(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return dsn
	}
	head := dsn[:slash]
	at := strings.LastIndexByte(head, '@')
	addr := head[at+1:]
	if addr == "" || strings.ContainsAny(addr, "()") {
		return dsn
	}
	return head[:at+1] + "tcp(" + addr + ")" + dsn[slash:]
}

// redact hides what looks like a password in a raw --db value for error messages: everything
// between the first ":" after the scheme and the last "@".
func redact(v string) string {
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Sprintf("%q", v)
	}
	prefix := scheme + ":"
	if strings.HasPrefix(rest, "//") {
		prefix += "//"
		rest = rest[2:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return fmt.Sprintf("%q", v)
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q", prefix+user+":xxxxx"+rest[at:])
}

// Open parses v and opens the store it names. logger may be nil.
func Open(ctx context.Context, v string, logger *slog.Logger) (store.Store, error) {
	spec, err := Parse(v)
	if err != nil {
		return nil, err
	}
	switch spec.Driver { // both Opens take a nil logger as "discard"
	case SQLite:
		return sqlite.Open(ctx, spec.Path, sqlite.WithLogger(logger))
	case MySQL:
		return mysql.Open(ctx, spec.DSN, mysql.WithLogger(logger))
	}
	return nil, errors.New("dsn: unreachable driver " + spec.Driver)
}
