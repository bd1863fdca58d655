package sqlite

// schema is the MogileFS schema version 17 as MogileFS::Store::SQLite creates it: the MySQL tables
// with TEXT for ENUMs, INTEGER PRIMARY KEY AUTOINCREMENT for the auto-increment ids and secondary
// indexes as separate statements. Every statement is idempotent, so opening an existing database
// changes nothing. Text columns use SQLite's default BINARY collation: keys compare byte-exactly.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS domain (
	dmid      SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
	namespace VARCHAR(255),
	UNIQUE (namespace)
)`,
	`CREATE TABLE IF NOT EXISTS class (
	dmid        SMALLINT UNSIGNED NOT NULL,
	classid     TINYINT UNSIGNED NOT NULL,
	classname   VARCHAR(50),
	mindevcount TINYINT UNSIGNED NOT NULL,
	hashtype    TINYINT UNSIGNED,
	replpolicy  VARCHAR(255),
	UNIQUE (dmid, classid),
	UNIQUE (dmid, classname)
)`,
	`CREATE TABLE IF NOT EXISTS file (
	fid      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	dmid     SMALLINT UNSIGNED NOT NULL,
	dkey     VARCHAR(255),
	length   BIGINT UNSIGNED,
	classid  TINYINT UNSIGNED NOT NULL,
	devcount TINYINT UNSIGNED NOT NULL,
	UNIQUE (dmid, dkey)
)`,
	`CREATE TABLE IF NOT EXISTS tempfile (
	fid        INTEGER PRIMARY KEY AUTOINCREMENT,
	createtime INT UNSIGNED NOT NULL,
	classid    TINYINT UNSIGNED NOT NULL,
	dmid       SMALLINT UNSIGNED NOT NULL,
	dkey       VARCHAR(255),
	devids     VARCHAR(60)
)`,
	`CREATE TABLE IF NOT EXISTS file_to_delete (
	fid BIGINT UNSIGNED NOT NULL PRIMARY KEY
)`,
	`CREATE TABLE IF NOT EXISTS unreachable_fids (
	fid        BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	lastupdate INT UNSIGNED NOT NULL
)`,
	`CREATE INDEX IF NOT EXISTS unreachable_fids_lastupdate ON unreachable_fids (lastupdate)`,
	`CREATE TABLE IF NOT EXISTS file_on (
	fid   BIGINT UNSIGNED NOT NULL,
	devid MEDIUMINT UNSIGNED NOT NULL,
	PRIMARY KEY (fid, devid)
)`,
	`CREATE INDEX IF NOT EXISTS file_on_devid ON file_on (devid)`,
	`CREATE TABLE IF NOT EXISTS file_on_corrupt (
	fid   BIGINT UNSIGNED NOT NULL,
	devid MEDIUMINT UNSIGNED NOT NULL,
	PRIMARY KEY (fid, devid)
)`,
	`CREATE TABLE IF NOT EXISTS host (
	hostid        MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
	status        TEXT,
	http_port     MEDIUMINT UNSIGNED DEFAULT 7500,
	http_get_port MEDIUMINT UNSIGNED,
	hostname      VARCHAR(40),
	hostip        VARCHAR(15),
	altip         VARCHAR(15),
	altmask       VARCHAR(18),
	UNIQUE (hostname),
	UNIQUE (hostip),
	UNIQUE (altip)
)`,
	`CREATE TABLE IF NOT EXISTS device (
	devid    MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
	hostid   MEDIUMINT UNSIGNED NOT NULL,
	status   TEXT,
	weight   MEDIUMINT DEFAULT 100,
	mb_total INT UNSIGNED,
	mb_used  INT UNSIGNED,
	mb_asof  INT UNSIGNED
)`,
	`CREATE INDEX IF NOT EXISTS device_status ON device (status)`,
	`CREATE TABLE IF NOT EXISTS server_settings (
	field VARCHAR(50) PRIMARY KEY,
	value TEXT
)`,
	`CREATE TABLE IF NOT EXISTS file_to_replicate (
	fid       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	nexttry   INT UNSIGNED NOT NULL,
	fromdevid INT UNSIGNED,
	failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
	flags     SMALLINT UNSIGNED NOT NULL DEFAULT 0
)`,
	`CREATE INDEX IF NOT EXISTS file_to_replicate_nexttry ON file_to_replicate (nexttry)`,
	`CREATE TABLE IF NOT EXISTS file_to_delete_later (
	fid      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	delafter INT UNSIGNED NOT NULL
)`,
	`CREATE INDEX IF NOT EXISTS file_to_delete_later_delafter ON file_to_delete_later (delafter)`,
	`CREATE TABLE IF NOT EXISTS fsck_log (
	logid  INTEGER PRIMARY KEY AUTOINCREMENT,
	utime  INT UNSIGNED NOT NULL,
	fid    BIGINT UNSIGNED NULL,
	evcode CHAR(4),
	devid  MEDIUMINT UNSIGNED
)`,
	`CREATE INDEX IF NOT EXISTS fsck_log_utime ON fsck_log (utime)`,
	`CREATE TABLE IF NOT EXISTS file_to_queue (
	fid       BIGINT UNSIGNED NOT NULL,
	devid     INT UNSIGNED,
	type      TINYINT UNSIGNED NOT NULL,
	nexttry   INT UNSIGNED NOT NULL,
	failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
	flags     SMALLINT UNSIGNED NOT NULL DEFAULT 0,
	arg       TEXT,
	PRIMARY KEY (fid, type)
)`,
	`CREATE INDEX IF NOT EXISTS type_nexttry ON file_to_queue (type, nexttry)`,
	`CREATE TABLE IF NOT EXISTS file_to_delete2 (
	fid       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	nexttry   INT UNSIGNED NOT NULL,
	failcount TINYINT UNSIGNED NOT NULL DEFAULT 0
)`,
	`CREATE INDEX IF NOT EXISTS file_to_delete2_nexttry ON file_to_delete2 (nexttry)`,
	`CREATE TABLE IF NOT EXISTS checksum (
	fid      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	hashtype TINYINT UNSIGNED NOT NULL,
	checksum BLOB NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS lock (
	lockid     INT UNSIGNED NOT NULL PRIMARY KEY,
	hostname   VARCHAR(255) NOT NULL,
	pid        INT UNSIGNED NOT NULL,
	acquiredat INT UNSIGNED NOT NULL
)`,
	`INSERT OR IGNORE INTO server_settings (field, value) VALUES ('schema_version', '17')`,
	// mogway's own: the Locate generation (see locateGenQuery), bumped in the same transaction by
	// every change to what Locate reads (file's fid, dmid, dkey and length; file_on), whoever
	// makes it: a trigger fires for every writer of the file, mogway or not, old or new.
	`CREATE TABLE IF NOT EXISTS mogway_locate_gen (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
)`,
	`INSERT OR IGNORE INTO mogway_locate_gen (id, n) VALUES (1, 0)`,
	locateGenTrigger("file_insert", "INSERT ON file"),
	locateGenTrigger("file_delete", "DELETE ON file"),
	locateGenTrigger("file_update", "UPDATE OF fid, dmid, dkey, length ON file"),
	locateGenTrigger("file_on_insert", "INSERT ON file_on"),
	locateGenTrigger("file_on_delete", "DELETE ON file_on"),
	locateGenTrigger("file_on_update", "UPDATE ON file_on"),
}

// locateGenQuery reads the Locate generation.
const locateGenQuery = "SELECT n FROM mogway_locate_gen WHERE id = 1"

// locateGenTrigger is the statement creating the trigger name that bumps the Locate generation
// after each row of event.
func locateGenTrigger(name, event string) string {
	return "CREATE TRIGGER IF NOT EXISTS mogway_locate_gen_" + name + " AFTER " + event +
		" BEGIN UPDATE mogway_locate_gen SET n = n + 1 WHERE id = 1; END"
}
