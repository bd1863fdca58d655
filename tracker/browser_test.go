package tracker_test

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mogway/mogway/internal/browsertest"
	"github.com/mogway/mogway/internal/clustertest"
)

// TestStatusPageInBrowser loads the cluster status page of a real cluster in headless Chromium: it
// loads with no console errors, shows the hosts and devices, escapes a domain named with markup,
// and, refreshing itself, shows a device as unreachable once its node is stopped. It saves
// screenshots in the test's temp dir.
func TestStatusPageInBrowser(t *testing.T) {
	const evil = `<script>document.title="pwned"</script>`
	b := browsertest.New(t)
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{evil: {"c1": 1}, "photos": {"thumb": 2}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	c.Upload(t, "photos", evil, "thumb", []byte("a key with markup"))
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	shots := t.TempDir()

	var title, hosts, devices, domains string
	if err := b.Run(
		chromedp.Navigate(web.URL+"/"),
		chromedp.WaitVisible(`#devices`, chromedp.ByQuery),
		chromedp.Title(&title),
		chromedp.Text(`#hosts`, &hosts, chromedp.ByQuery),
		chromedp.Text(`#devices`, &devices, chromedp.ByQuery),
		chromedp.Text(`#domains`, &domains, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	browsertest.CheckNoErrors(t, b)
	if strings.Contains(title, "pwned") {
		t.Errorf("title = %q: the domain's <script> ran", title)
	}
	for _, want := range []string{c.HostName(0), c.HostName(1)} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts table lacks %q:\n%s", want, hosts)
		}
	}
	for _, want := range []string{"dev1", "dev2", "writeable"} {
		if !strings.Contains(devices, want) {
			t.Errorf("devices table lacks %q:\n%s", want, devices)
		}
	}
	if !strings.Contains(domains, evil) {
		t.Errorf("domains table does not show %q as text:\n%s", evil, domains)
	}
	b.Screenshot(t, shots, "status.png")

	dev := c.DevIDs(1)[0]
	c.StopNode(t, 1)
	c.WaitObserved(t, 0, "unreachable", dev)
	// No reload from the test: the page refreshes itself.
	sel := `tr[data-device="dev` + strconv.Itoa(dev) + `"][data-observed="unreachable"]`
	if err := b.Run(chromedp.WaitVisible(sel, chromedp.ByQuery)); err != nil {
		t.Fatalf("the page never showed dev%d unreachable: %v", dev, err)
	}
	browsertest.CheckNoErrors(t, b)
	b.Screenshot(t, shots, "status-node-down.png")
}
