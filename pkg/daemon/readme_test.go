package daemon

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestREADMEMetricsExist: every pacsd metric the README's scrape
// configuration and alert rules name is one pacsd exports.
func TestREADMEMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "scrape_configs:")
	if i < 0 {
		t.Fatal("the README shows no scrape configuration")
	}
	rules := readme[i:]
	rules = rules[:strings.Index(rules, "```")]
	for _, alert := range []string{"PacsNoPrimary", "PacsStandbyBeyondMaxLag", "PacsSlotRetentionNearLimit"} {
		if !strings.Contains(rules, "alert: "+alert) {
			t.Errorf("the README's rules lack %s", alert)
		}
	}
	exported := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for _, c := range newMetrics("test").all {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				exported[m[1]] = true
			}
		}
	}
	named := regexp.MustCompile(`pacsd_[a-z_]+`).FindAllString(rules, -1)
	if len(named) < 3 {
		t.Fatalf("the README's rules name %d pacsd metrics", len(named))
	}
	for _, name := range named {
		if !exported[name] {
			t.Errorf("the README's rules name %s, which pacsd does not export", name)
		}
	}
	// Every metric the README lists in prose exists too.
	for _, name := range regexp.MustCompile("`(pacsd_[a-z_]+)").FindAllStringSubmatch(readme, -1) {
		if !exported[name[1]] {
			t.Errorf("the README names %s, which pacsd does not export", name[1])
		}
	}
}
