package gateway

import (
	"strings"

	"github.com/valyala/fasthttp"
)

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
