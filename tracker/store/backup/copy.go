package backup

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// querier is what copyTable reads from: a *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// batchRows is how many rows one INSERT carries.
const batchRows = 250

// copyTable copies every row of table from src to dst (which must have the table and the columns
// of src) in one transaction of dst, and returns how many rows it copied. onRows, if not nil, is
// told of every batch written. Values read from MySQL
// come as text; toSQLite turns them into the types the SQLite schema declares, so keys stay TEXT
// and counters INTEGER.
func copyTable(ctx context.Context, src querier, dst *sql.DB, table string, toSQLite bool, onRows func(n int64)) (int64, error) {
	rows, err := src.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return 0, fmt.Errorf("backup: read %s: %w", table, err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, fmt.Errorf("backup: read %s: %w", table, err)
	}
	cols := make([]string, len(types))
	for i, ct := range types {
		cols[i] = "`" + ct.Name() + "`"
	}
	row1 := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "

	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("backup: write %s: %w", table, err)
	}
	defer tx.Rollback() // a no-op after Commit
	var n int64
	args := make([]any, 0, batchRows*len(cols))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		k := len(args) / len(cols)
		q := head + strings.TrimSuffix(strings.Repeat(row1+", ", k), ", ")
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("backup: write %s: %w", table, err)
		}
		args = args[:0]
		if onRows != nil {
			onRows(int64(k))
		}
		return nil
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("backup: read %s: %w", table, err)
		}
		for i, v := range vals {
			if toSQLite {
				if v, err = sqliteValue(table, types[i], v); err != nil {
					return 0, err
				}
			}
			args = append(args, v)
		}
		n++
		if n%batchRows == 0 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("backup: read %s: %w", table, err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("backup: write %s: %w", table, err)
	}
	return n, nil
}

// sqliteValue converts a value go-sql-driver/mysql returned ([]byte for every non-NULL column of
// a text-protocol query) into what the SQLite schema stores: an integer for integer columns, a
// string for text (keys must stay TEXT to be found again), bytes for checksum.checksum only.
func sqliteValue(table string, ct *sql.ColumnType, v any) (any, error) {
	b, ok := v.([]byte)
	if !ok {
		return v, nil
	}
	if table == "checksum" && ct.Name() == "checksum" {
		return append([]byte(nil), b...), nil
	}
	switch t := ct.DatabaseTypeName(); {
	case strings.Contains(t, "INT"):
		if strings.HasPrefix(t, "UNSIGNED") {
			u, err := strconv.ParseUint(string(b), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("backup: %s.%s: %w", table, ct.Name(), err)
			}
			return int64(u), nil
		}
		i, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("backup: %s.%s: %w", table, ct.Name(), err)
		}
		return i, nil
	}
	return string(b), nil
}
