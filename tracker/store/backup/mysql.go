package backup

import (
	"context"
	"database/sql"
	"fmt"

	mysqldrv "github.com/go-sql-driver/mysql"

	dsnpkg "github.com/mogway/mogway/tracker/store/dsn"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// openMySQL opens a pool on a go-sql-driver DSN.
func openMySQL(dsn string) (*sql.DB, error) {
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return sql.OpenDB(conn), nil
}

// snapshotMySQL copies every table of tables from the MySQL/MariaDB database into a new SQLite
// file at tmp, reading all of them inside one START TRANSACTION WITH CONSISTENT SNAPSHOT: InnoDB
// shows the transaction one point in time, and writers are not blocked.
func snapshotMySQL(ctx context.Context, dsn, tmp string, w *sizeWatch) error {
	src, err := openMySQL(dsn)
	if err != nil {
		return err
	}
	defer src.Close()
	conn, err := src.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	var total, next sql.NullInt64
	if err := conn.QueryRowContext(ctx,
		"SELECT SUM(data_length + index_length), MAX(IF(table_name = 'tempfile', auto_increment, NULL)) FROM information_schema.tables WHERE table_schema = DATABASE()",
	).Scan(&total, &next); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	w.setTotal(total.Int64)

	st, err := sqlite.Open(ctx, tmp) // creates the schema
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	dst, err := openSQLite(tmp, false)
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := dst.ExecContext(ctx, "DELETE FROM server_settings"); err != nil { // replaced by the source's
		return fmt.Errorf("backup: %w", err)
	}
	for _, t := range tables {
		if _, err := copyTable(ctx, conn, dst, t, true, nil); err != nil {
			return err
		}
	}
	// Keep the fid counter where the source had it, so fids of files deleted just before the
	// backup are not handed out again by a tracker running on the copy. (finish raises it above
	// every fid the copy mentions, for a source whose counter went back.)
	if err := setFidCounter(ctx, dst, next.Int64-1); err != nil {
		return err
	}
	return finish(ctx, dst)
}

// restoreMySQL loads the backup at from into the MySQL/MariaDB database named by dsn, creating
// the schema if it is missing. Unless force is set, a database that holds a namespace is refused;
// with force, its MogileFS tables are emptied first. Progress is reported as the share of the
// backup's rows copied, scaled to its size in bytes.
func restoreMySQL(ctx context.Context, from, dsn string, force bool, want Report, progress Progress) error {
	st, err := mysql.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	dst, err := openMySQL(dsn)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := checkEmpty(ctx, dst, dsnpkg.Spec{Driver: dsnpkg.MySQL, DSN: dsn}.String(), force); err != nil {
		return err
	}
	for _, t := range tables { // (named locks are GET_LOCK on MySQL: there is no lock table)
		if _, err := dst.ExecContext(ctx, "DELETE FROM `"+t+"`"); err != nil {
			return fmt.Errorf("backup: empty %s: %w", t, err)
		}
	}
	src, err := openSQLite(from, true)
	if err != nil {
		return err
	}
	defer src.Close()
	var total, done int64
	for _, c := range want.Counts {
		total += c.Rows
	}
	var onRows func(int64)
	if progress != nil && total > 0 {
		onRows = func(n int64) {
			done += n
			progress(want.Bytes*done/total, want.Bytes)
		}
	}
	for _, t := range tables {
		if _, err := copyTable(ctx, src, dst, t, false, onRows); err != nil {
			return err
		}
	}
	next, err := nextFid(ctx, src)
	if err != nil {
		return err
	}
	if _, err := dst.ExecContext(ctx, fmt.Sprintf("ALTER TABLE tempfile AUTO_INCREMENT = %d", next)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
