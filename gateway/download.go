package gateway

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// mimeTypes maps lower-case extensions to Content-Type, after nginx's mime.types. A fixed table keeps
// answers the same on every host (the standard mime package reads the system's files).
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

// mimeType is the Content-Type for name by its extension; application/octet-stream when unknown
// (nginx default_type).
func mimeType(name string) string {
	base := name[strings.LastIndexByte(name, '/')+1:]
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		if t, ok := mimeTypes[strings.ToLower(base[i+1:])]; ok {
			return t
		}
	}
	return "application/octet-stream"
}

// disposition builds the Content-Disposition for a request's query, or "" for none.
//
//   - ?download=1 (any value but "0" or "false"): attachment, named after the key's last segment or
//     ?filename=.
//   - ?filename=NAME alone: attachment named NAME.
//   - ?filename=NAME&download=0: inline, still named NAME.
func disposition(d Download, args *fasthttp.Args, key string) string {
	dl := args.Peek(d.Param)
	hasDL := args.Has(d.Param)
	name := string(args.Peek(d.FilenameParam))
	hasName := name != ""
	if !hasDL && !hasName {
		return ""
	}
	kind := "attachment"
	if hasDL && (string(dl) == "0" || strings.EqualFold(string(dl), "false")) {
		if !hasName {
			return ""
		}
		kind = "inline"
	}
	if !hasName {
		name = key[strings.LastIndexByte(key, '/')+1:]
	}
	return contentDisposition(kind, name)
}

// contentDisposition formats RFC 6266 with an ASCII fallback filename and the exact name in RFC 5987
// filename* form. Path separators and control bytes are dropped from the name; a name left empty gives
// the bare disposition type.
func contentDisposition(kind, name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		return kind
	}
	var ascii, ext strings.Builder
	for _, r := range name {
		switch {
		case r == '"' || r == '\\' || r == '%':
			ascii.WriteByte('_')
		case r < 0x80:
			ascii.WriteRune(r)
		default:
			ascii.WriteByte('_')
		}
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAttrChar(c) {
			ext.WriteByte(c)
			continue
		}
		ext.WriteByte('%')
		ext.WriteByte(hex[c>>4])
		ext.WriteByte(hex[c&15])
	}
	return kind + `; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar is RFC 5987 attr-char.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
