package web

import (
	"html/template"
	"strings"
	"testing"
)

func TestStatusPageIncludesSharedHeadAndStyle(t *testing.T) {
	page := StatusPage("p", template.FuncMap{"up": strings.ToUpper},
		"{{template \"head\" .}}\n<title>{{up .Name}}</title>\n<style>\n{{template \"style\"}}\n</style>\n")
	var b strings.Builder
	if err := page.Execute(&b, struct {
		Refresh int
		Name    string
	}{7, "node<1>"}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"<!doctype html>\n<html lang=\"en\">",
		`<meta http-equiv="refresh" content="7">`,
		"<title>NODE&lt;1&gt;</title>",
		"td.num{text-align:right}",
		".st{padding:1px 6px;border-radius:8px;font-size:12px}\n</style>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
}
