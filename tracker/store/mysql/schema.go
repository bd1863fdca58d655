package mysql

// schema is the MogileFS schema version 17 as mogdbsetup creates it on a fresh install, with fid
// columns BIGINT UNSIGNED (the fresh-install width) and InnoDB tables. Columns holding keys and
// names compare byte-exactly: dkey, namespace and classname are VARBINARY (arbitrary bytes, no
// case folding, no trailing-space padding) and the other text columns use utf8mb4_bin. Every
// statement is CREATE TABLE IF NOT EXISTS, so an existing MogileFS database is not altered.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS domain (
	dmid      SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
	namespace VARBINARY(255),
	UNIQUE (namespace)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS class (
	dmid        SMALLINT UNSIGNED NOT NULL,
	classid     TINYINT UNSIGNED NOT NULL,
	PRIMARY KEY (dmid, classid),
	classname   VARBINARY(50),
	UNIQUE (dmid, classname),
	mindevcount TINYINT UNSIGNED NOT NULL,
	hashtype    TINYINT UNSIGNED,
	replpolicy  VARCHAR(255)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS file (
	fid      BIGINT UNSIGNED NOT NULL,
	PRIMARY KEY (fid),
	dmid     SMALLINT UNSIGNED NOT NULL,
	dkey     VARBINARY(255),
	UNIQUE dkey (dmid, dkey),
	length   BIGINT UNSIGNED,
	classid  TINYINT UNSIGNED NOT NULL,
	devcount TINYINT UNSIGNED NOT NULL,
	INDEX devcount (dmid, classid, devcount)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS tempfile (
	fid        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
	PRIMARY KEY (fid),
	createtime INT UNSIGNED NOT NULL,
	classid    TINYINT UNSIGNED NOT NULL,
	dmid       SMALLINT UNSIGNED NOT NULL,
	dkey       VARBINARY(255),
	devids     VARCHAR(60)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS file_to_delete (
	fid BIGINT UNSIGNED NOT NULL,
	PRIMARY KEY (fid)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS unreachable_fids (
	fid        BIGINT UNSIGNED NOT NULL,
	lastupdate INT UNSIGNED NOT NULL,
	PRIMARY KEY (fid),
	INDEX (lastupdate)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS file_on (
	fid   BIGINT UNSIGNED NOT NULL,
	devid MEDIUMINT UNSIGNED NOT NULL,
	PRIMARY KEY (fid, devid),
	INDEX (devid)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS file_on_corrupt (
	fid   BIGINT UNSIGNED NOT NULL,
	devid MEDIUMINT UNSIGNED NOT NULL,
	PRIMARY KEY (fid, devid)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS host (
	hostid        MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
	status        ENUM('alive','dead','down','readonly'),
	http_port     MEDIUMINT UNSIGNED DEFAULT 7500,
	http_get_port MEDIUMINT UNSIGNED,
	hostname      VARCHAR(40),
	hostip        VARCHAR(15),
	altip         VARCHAR(15),
	altmask       VARCHAR(18),
	UNIQUE (hostname),
	UNIQUE (hostip),
	UNIQUE (altip)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS device (
	devid    MEDIUMINT UNSIGNED NOT NULL,
	hostid   MEDIUMINT UNSIGNED NOT NULL,
	status   ENUM('alive','dead','down','readonly','drain'),
	weight   MEDIUMINT DEFAULT 100,
	mb_total INT UNSIGNED,
	mb_used  INT UNSIGNED,
	mb_asof  INT UNSIGNED,
	PRIMARY KEY (devid),
	INDEX (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS server_settings (
	field VARCHAR(50) PRIMARY KEY,
	value TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS file_to_replicate (
	fid       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	nexttry   INT UNSIGNED NOT NULL,
	INDEX (nexttry),
	fromdevid INT UNSIGNED,
	failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
	flags     SMALLINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS file_to_delete_later (
	fid      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	delafter INT UNSIGNED NOT NULL,
	INDEX (delafter)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS fsck_log (
	logid  INT UNSIGNED NOT NULL AUTO_INCREMENT,
	PRIMARY KEY (logid),
	utime  INT UNSIGNED NOT NULL,
	fid    BIGINT UNSIGNED NULL,
	evcode CHAR(4),
	devid  MEDIUMINT UNSIGNED,
	INDEX (utime)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS file_to_queue (
	fid       BIGINT UNSIGNED NOT NULL,
	devid     INT UNSIGNED,
	type      TINYINT UNSIGNED NOT NULL,
	nexttry   INT UNSIGNED NOT NULL,
	failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
	flags     SMALLINT UNSIGNED NOT NULL DEFAULT 0,
	arg       TEXT,
	PRIMARY KEY (fid, type),
	INDEX type_nexttry (type, nexttry)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS file_to_delete2 (
	fid       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	nexttry   INT UNSIGNED NOT NULL,
	failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
	INDEX nexttry (nexttry)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS checksum (
	fid      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	hashtype TINYINT UNSIGNED NOT NULL,
	checksum VARBINARY(64) NOT NULL
) ENGINE=InnoDB`,
}
