// Package browsertest drives a headless Chromium in tests with chromedp: New starts a fresh browser
// (its own user data directory, no network services of its own) and records every console error,
// uncaught exception and browser log error, so a test can check that a page loads cleanly.
//
// Tests skip, saying why, when no Chromium is installed (Debian package chromium;
// scripts/test-deps.sh installs it for `make test`).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each browser action of a test.
const Timeout = 60 * time.Second

// Browser is one headless Chromium tab.
type Browser struct {
	Ctx context.Context // the tab: pass it to chromedp.Run

	mu     sync.Mutex // guards errors
	errors []string
}

// New starts Chromium for t and closes it at cleanup.
func New(t testing.TB) *Browser {
	t.Helper()
	path := findChromium()
	if path == "" {
		t.Skip("no chromium installed (Debian package chromium; scripts/test-deps.sh installs it): skipping the browser test")
	}
	// Chromium's helper processes may still write to the profile for a moment after the browser
	// is killed, so the profile is not in t.TempDir (whose removal would then fail the test): it
	// is removed, with bounded retries, at cleanup.
	profile, err := os.MkdirTemp("", "mogway-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(390, 844), // a phone screen
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				b.addError("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			b.addError("exception: " + ev.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				b.addError(fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		for i := 0; i < 50; i++ {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	// The first Run starts the browser and ties it to the context it is given: that must be the
	// tab's own context, not one with a timeout that ends after the first action.
	if err := chromedp.Run(ctx, runtime.Enable(), log.Enable()); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return b
}

func (b *Browser) addError(s string) {
	b.mu.Lock()
	b.errors = append(b.errors, s)
	b.mu.Unlock()
}

// Errors returns the console errors, exceptions and log errors seen so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// CheckNoErrors fails t if the browser saw any console error, exception or log error.
func CheckNoErrors(t testing.TB, b *Browser) {
	t.Helper()
	for _, e := range b.Errors() {
		t.Errorf("browser: %s", e)
	}
}

// Run runs actions in the tab, bounded by Timeout.
func (b *Browser) Run(actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(b.Ctx, Timeout)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// Screenshot saves a full-page PNG of the tab (quality 100 makes chromedp answer PNG, not JPEG) as dir/name and returns its path. When the
// environment names a directory in MOGWAY_TEST_ARTIFACTS, a copy is kept there too.
func (b *Browser) Screenshot(t testing.TB, dir, name string) string {
	t.Helper()
	var png []byte
	if err := b.Run(chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	if keep := os.Getenv("MOGWAY_TEST_ARTIFACTS"); keep != "" {
		// The temp dir goes with the test; a directory named here keeps a copy.
		k := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name)
		if err := os.WriteFile(k, png, 0o644); err != nil {
			t.Errorf("keep the screenshot: %v", err)
		}
	}
	return p
}

func findChromium() string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}
