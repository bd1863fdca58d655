package gateway

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mogway/mogway/internal/browsertest"
)

// TestStatusPageInBrowser loads the gateway's /status in headless Chromium: the browser's Accept
// header gets the HTML page, which loads with no console errors and shows the storage node.
func TestStatusPageInBrowser(t *testing.T) {
	b := browsertest.New(t)
	g, n := servedGateway(t)
	var nodes string
	if err := b.Run(
		chromedp.Navigate(g.base+"/status"),
		chromedp.WaitVisible(`#nodes`, chromedp.ByQuery),
		chromedp.Text(`#nodes`, &nodes, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("load /status: %v", err)
	}
	browsertest.CheckNoErrors(t, b)
	if !strings.Contains(nodes, n.addr) || !strings.Contains(nodes, "up") {
		t.Errorf("nodes table = %q, want %s up", nodes, n.addr)
	}
	b.Screenshot(t, t.TempDir(), "gateway-status.png")
}
