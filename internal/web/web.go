// Package web holds what the gateway's and the tracker's status pages share: the start of the
// document ({{template "head" .}}, which reads .Refresh, the page's reload period in seconds) and
// the common stylesheet rules ({{template "style"}}, inside the page's <style> element). It imports
// no mogway package.
package web

import (
	_ "embed"
	"html/template"
)

//go:embed head.html
var partials string

// StatusPage parses page, a status page template that may use the shared "head" and "style"
// templates, with funcs. It panics if a template does not parse, like template.Must.
func StatusPage(name string, funcs template.FuncMap, page string) *template.Template {
	t := template.Must(template.New(name).Funcs(funcs).Parse(page))
	return template.Must(t.Parse(partials))
}
