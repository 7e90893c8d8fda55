package e2e

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts a headless chromium for a test (a fresh profile, no
// sandbox: the tests run as root) and returns its context, closed when the
// test ends. Without PACSD_E2E=1 the test is skipped; with it, a missing
// chromium fails it (scripts/chromium.sh installs it).
func Browser(t testing.TB) context.Context {
	t.Helper()
	if !Enabled() {
		t.Skip("browser test: set PACSD_E2E=1 (or run 'make test') to run it in a headless chromium")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is missing (%v); run 'bash scripts/chromium.sh' (as root it installs Debian's chromium)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return ctx
}

// BrowserProblems collects what the page's console shows that a test
// must not see: uncaught exceptions and what the page's CSP refused. The
// function returned gives what was collected so far.
func BrowserProblems(ctx context.Context) func() []string {
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}
