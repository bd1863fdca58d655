package gateway

import (
	"fmt"
	"net/textproto"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/purge"
)

// Cache tags (surrogate keys). A cached route stores each answer with the tags of its `tags:` list
// and the words of the upstream header its `tag_header:` names (Fastly's Surrogate-Key is separated
// by spaces, Cloudflare's Cache-Tag by commas; both separators are accepted in either). The tag
// header is not stored, so it never reaches clients, as with both CDNs. `PURGE /purge?tag=T` then
// purges every entry stored with T, here and on the purge peers.

// maxEntryTags bounds the tags stored with one entry; further words of the header are ignored.
const maxEntryTags = 256

var _ purge.TagPurger = (*cache.Cache)(nil)

// validateTags checks the tags and tag_header fields of a RouteCache.
func validateTags(tags []string, header string, add func(field, fix, format string, args ...any)) {
	for i, tag := range tags {
		if _, err := purge.ParseTag(tag); err != nil {
			add(fmt.Sprintf("tags[%d]", i), "write a word without spaces, commas or control characters", "%q: %v", tag, err)
		}
	}
	if header != "" && !validHeaderName(header) {
		add("tag_header", "write a header name such as Surrogate-Key or Cache-Tag", "%q is not a header name", header)
	}
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// compileTags sets the tag settings of a compiled route cache.
func (cr *cacheRoute) compileTags(rc RouteCache) {
	cr.tags = slices.Clone(rc.Tags)
	if rc.TagHeader != "" {
		cr.tagHeader = textproto.CanonicalMIMEHeaderKey(rc.TagHeader)
	}
}

// isTagHeader reports whether name (as fasthttp spells it) is the route's tag header.
func (cr *cacheRoute) isTagHeader(name string) bool {
	return cr.tagHeader != "" && strings.EqualFold(name, cr.tagHeader)
}

// entryTags returns the tags to store with an answer: the route's, then the words of the tag header
// of h (nil h: the route's only), without duplicates or words that are not valid tags.
func (cr *cacheRoute) entryTags(h *fasthttp.ResponseHeader) []string {
	tags := cr.tags
	if cr.tagHeader == "" || h == nil {
		return tags
	}
	tags = slices.Clone(tags)
	for _, v := range h.PeekAll(cr.tagHeader) {
		tags = appendTags(tags, string(v))
	}
	return tags
}

// appendTags adds the words of a Surrogate-Key or Cache-Tag value to tags.
func appendTags(tags []string, v string) []string {
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		if len(tags) >= maxEntryTags {
			break
		}
		if _, err := purge.ParseTag(w); err != nil || slices.Contains(tags, w) {
			continue
		}
		tags = append(tags, w)
	}
	return tags
}

// PurgeTag purges the entries stored with tag. The tracker path cache is dropped whole: which keys
// carry the tag is known only to the cache.
func (p purgeTarget) PurgeTag(tag string, soft bool) (int, int64) {
	st := p.s.acquire()
	defer st.release()
	st.paths.purge()
	if tp, ok := p.cache.(purge.TagPurger); ok {
		return tp.PurgeTag(tag, soft)
	}
	return 0, 0
}
