// Package dsn opens the tracker's metadata store from the one-string form of the tracker's --db
// flag (and the tracker section's `db` setting); package dbaddr lists the forms. It lives apart
// from package store because it imports both implementations, which import store, and apart from
// dbaddr so that checking a configuration does not link the database drivers.
package dsn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/dbaddr"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// Drivers named by Spec.Driver.
const (
	SQLite = dbaddr.SQLite
	MySQL  = dbaddr.MySQL
)

// Spec is a parsed --db value.
type Spec = dbaddr.Addr

// Parse checks a --db value as dbaddr.Parse does and, for MySQL, the values of the driver's own
// parameters (timeout, tls, ...) as the driver reads them.
func Parse(v string) (Spec, error) {
	s, err := dbaddr.Parse(v)
	if err != nil || s.Driver != MySQL {
		return s, err
	}
	if _, err := mysqldrv.ParseDSN(s.DSN); err != nil {
		return Spec{}, fmt.Errorf("db %s: %v; %s", s, err, dbaddr.Formats)
	}
	return s, nil
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
