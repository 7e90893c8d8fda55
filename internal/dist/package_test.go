package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/goreleaser/nfpm/v2/files"
)

// TestDebVersion: every form git describe gives becomes a Debian version,
// and dpkg orders them the way the commits came (checked with dpkg itself
// where it is installed, as on every Debian machine).
func TestDebVersion(t *testing.T) {
	for _, tt := range []struct {
		describe string
		commits  int
		want     string
	}{
		{"v1.2.0", 0, "1.2.0"},
		{"1.2.0", 0, "1.2.0"},
		{"v1.2.0-dirty", 0, "1.2.0+dirty"},
		{"v1.2.0-rc1", 0, "1.2.0~rc1"},
		{"v1.2.0-rc1-3-gabc1234", 0, "1.2.0~rc1+git3.abc1234"},
		{"v1.2.0-3-gabc1234", 0, "1.2.0+git3.abc1234"},
		{"v1.2.0-3-gabc1234-dirty", 0, "1.2.0+git3.abc1234.dirty"},
		{"f2ead40", 286, "0.0.0+git286.f2ead40"},
		{"f2ead40-dirty", 286, "0.0.0+git286.f2ead40.dirty"},
	} {
		got, err := debVersion(tt.describe, tt.commits)
		if err != nil || got != tt.want {
			t.Errorf("debVersion(%q, %d) = %q, %v; want %q", tt.describe, tt.commits, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		describe string
		commits  int
	}{{"", 0}, {"f2ead40", 0}, {"release_one", 0}, {"v1.2 beta", 0}, {"v1.2.0;rm -rf /", 0}} {
		if got, err := debVersion(bad.describe, bad.commits); err == nil {
			t.Errorf("debVersion(%q, %d) = %q; want an error", bad.describe, bad.commits, got)
		}
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Logf("dpkg is not installed: the order is not checked (%v)", err)
		return
	}
	ordered := []string{"0.0.0+git286.f2ead40", "0.0.0+git286.f2ead40.dirty", "0.0.0+git287.0123abc",
		"1.2.0~rc1", "1.2.0~rc1+git3.abc1234", "1.2.0", "1.2.0+dirty", "1.2.0+git3.abc1234", "1.2.0+git10.0000000", "1.10.0"}
	for i := 1; i < len(ordered); i++ {
		if out, err := exec.Command("dpkg", "--compare-versions", ordered[i-1], "lt", ordered[i]).CombinedOutput(); err != nil {
			t.Errorf("dpkg does not order %s before %s: %v %s", ordered[i-1], ordered[i], err, out)
		}
	}
}

// TestPackagedUnit: the package's unit runs /usr/bin/pacsd, and differs from
// systemd/pacsd.service in that alone.
func TestPackagedUnit(t *testing.T) {
	src, err := os.ReadFile("../../systemd/pacsd.service")
	if err != nil {
		t.Fatal(err)
	}
	got, err := packagedUnit(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("\nExecStart=/usr/bin/pacsd run -f /etc/pacsd/pacs.hcl $PACSD_OPTS\n")) {
		t.Errorf("the packaged unit does not run /usr/bin/pacsd:\n%s", got)
	}
	if back := bytes.Replace(got, []byte("ExecStart="+binPath+" "), []byte(sourceExec), 1); !bytes.Equal(back, src) {
		t.Error("the packaged unit differs from systemd/pacsd.service in more than ExecStart")
	}
	for _, unit := range []string{"[Service]\n", "[Service]\nExecStart=/usr/local/bin/pacsd run\nExecStart=/usr/local/bin/pacsd run\n"} {
		if _, err := packagedUnit([]byte(unit)); err == nil {
			t.Errorf("packagedUnit(%q) succeeded; want an error", unit)
		}
	}
}

// TestPackageInfo: what the package holds, where, with which mode; the
// configuration is made of conffiles, and every source exists.
func TestPackageInfo(t *testing.T) {
	info := packageInfo(layout{root: "../..", stage: "/stage", binary: "/build/pacsd", examples: []string{"../../examples/single.hcl"}}, "1.2.0", "amd64")
	got := map[string]string{}
	for _, c := range info.Contents {
		kind := "file"
		if c.Type != "" {
			kind = c.Type
		}
		got[c.Destination] = kind + " " + c.FileInfo.Mode.String()
		if c.Source != "" && !strings.HasPrefix(c.Source, "/") {
			if _, err := os.Stat(c.Source); err != nil {
				t.Errorf("the source of %s: %v", c.Destination, err)
			}
		}
	}
	want := map[string]string{
		"/usr/bin/pacsd":                                  "file -rwxr-xr-x",
		"/usr/lib/systemd/system/pacsd.service":           "file -rw-r--r--",
		"/usr/lib/sysusers.d/pacsd.conf":                  "file -rw-r--r--",
		"/etc/pacsd":                                      files.TypeDir + " -rwxr-x---",
		"/etc/pacsd/pacsd.env":                            files.TypeConfig + " -rw-r-----",
		"/etc/pacsd/pacs.hcl.example":                     files.TypeConfig + " -rw-r-----",
		"/usr/share/doc/pacsd/README.md":                  "file -rw-r--r--",
		"/usr/share/doc/pacsd/examples/single.hcl":        "file -rw-r--r--",
		"/usr/share/bash-completion/completions/pacsd":    "file -rw-r--r--",
		"/usr/share/zsh/vendor-completions/_pacsd":        "file -rw-r--r--",
		"/usr/share/fish/vendor_completions.d/pacsd.fish": "file -rw-r--r--",
	}
	for dest, w := range want {
		if got[dest] != w {
			t.Errorf("%s: %q, want %q", dest, got[dest], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the package holds %d paths, want %d: %v", len(got), len(want), got)
	}
	for _, s := range []string{info.Scripts.PostInstall, info.Scripts.PreRemove, info.Scripts.PostRemove} {
		if fi, err := os.Stat(s); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("maintainer script %s: %v, %v", s, fi, err)
		}
	}
	if strings.Contains(strings.Join(info.Depends, " "), "docker") {
		t.Errorf("the package depends on docker (%v); docker.io is only recommended", info.Depends)
	}
}

// TestTrackedExamples: an untracked topology file beside the examples (a
// developer's own, which git describe does not count as dirty) never ships.
func TestTrackedExamples(t *testing.T) {
	root := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	for _, f := range []string{"examples/single.hcl", "examples/local.hcl", "examples/sub/deep.hcl", "examples/README.md"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("#\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "examples/single.hcl", "examples/sub/deep.hcl", "examples/README.md")
	git("commit", "-q", "-m", "x")
	got, err := trackedExamples(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(root, "examples/single.hcl")}; !cmp.Equal(got, want) {
		t.Errorf("trackedExamples = %q, want %q", got, want)
	}
}
