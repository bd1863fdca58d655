package httpsem

// mimeTypes maps lower-case extensions to Content-Type, after nginx's mime.types. A fixed table gives
// the same answer on every host; the standard mime package reads the system's files (/etc/mime.types
// and others), so one file could get a different Content-Type on another machine.
var mimeTypes = map[string]string{
	"html": "text/html", "htm": "text/html", "shtml": "text/html", "css": "text/css",
	"xml": "text/xml", "txt": "text/plain", "csv": "text/csv", "md": "text/markdown",
	"js": "application/javascript", "mjs": "application/javascript", "json": "application/json",
	"gif": "image/gif", "jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png",
	"webp": "image/webp", "avif": "image/avif", "svg": "image/svg+xml", "svgz": "image/svg+xml",
	"ico": "image/x-icon", "bmp": "image/x-ms-bmp", "tif": "image/tiff", "tiff": "image/tiff",
	"heic": "image/heic", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
	"pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip", "tgz": "application/gzip",
	"tar": "application/x-tar", "7z": "application/x-7z-compressed", "rar": "application/x-rar-compressed",
	"bz2": "application/x-bzip2", "xz": "application/x-xz", "zst": "application/zstd",
	"doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint",
	"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"rtf":  "application/rtf", "epub": "application/epub+zip", "wasm": "application/wasm",
	"apk": "application/vnd.android.package-archive", "swf": "application/x-shockwave-flash",
	"mp3": "audio/mpeg", "ogg": "audio/ogg", "m4a": "audio/x-m4a", "wav": "audio/wav",
	"flac": "audio/flac", "aac": "audio/aac", "mid": "audio/midi", "midi": "audio/midi",
	"mp4": "video/mp4", "m4v": "video/x-m4v", "mov": "video/quicktime", "webm": "video/webm",
	"mpeg": "video/mpeg", "mpg": "video/mpeg", "avi": "video/x-msvideo", "flv": "video/x-flv",
	"mkv": "video/x-matroska", "wmv": "video/x-ms-wmv", "3gp": "video/3gpp", "ts": "video/mp2t",
	"m3u8": "application/vnd.apple.mpegurl",
}

// DefaultType is the Content-Type of a name whose extension is unknown (nginx's default_type).
const DefaultType = "application/octet-stream"

// ContentType is the Content-Type for name (a path, a key or a file name) by the extension of its last
// segment, compared case-insensitively; DefaultType when there is none or it is not in the table.
func ContentType[T Text](name T) string {
	ext := name[:0]
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == '.' {
			ext = name[i+1:]
			break
		}
	}
	var low [16]byte
	if len(ext) == 0 || len(ext) > len(low) {
		return DefaultType
	}
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	if t, ok := mimeTypes[string(low[:len(ext)])]; ok {
		return t
	}
	return DefaultType
}
