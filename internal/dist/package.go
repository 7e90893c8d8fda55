package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
)

// Where the package puts pacsd and its unit.
const (
	binPath  = "/usr/bin/pacsd"
	unitPath = "/usr/lib/systemd/system/pacsd.service"
	// sourceExec is the ExecStart of systemd/pacsd.service, for a pacsd
	// installed by hand.
	sourceExec = "ExecStart=/usr/local/bin/pacsd "
)

var (
	// A version git describe gives from a tag: the tag, then, for a commit
	// after it, "-N-gHASH".
	describedRE = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]{4,40})$`)
	// A version git describe --always gives without any tag: the hash.
	hashRE = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// What may remain of a tag in a Debian version without a revision.
	debianRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// debVersion turns the version git describe --tags --always --dirty gives
// (and pacsd version prints) into a Debian version that dpkg orders the way
// the commits came: "v1.2.0" is 1.2.0, "v1.2.0-rc1" 1.2.0~rc1 (before
// 1.2.0), "v1.2.0-3-gabc1234" 1.2.0+git3.abc1234, "-dirty" adds ".dirty"
// (or "+dirty"); without any tag, commits (git rev-list --count HEAD) orders
// them: "abc1234" is 0.0.0+git286.abc1234. No side effects.
func debVersion(describe string, commits int) (string, error) {
	if describe == "" {
		return "", fmt.Errorf("no version given; pass -version \"$(git describe --tags --always --dirty)\"")
	}
	v, dirty := strings.CutSuffix(describe, "-dirty")
	var base, after string
	switch m := describedRE.FindStringSubmatch(v); {
	case hashRE.MatchString(v):
		if commits <= 0 {
			return "", fmt.Errorf("version %q names no tag: pass -commits \"$(git rev-list --count HEAD)\" to order it", describe)
		}
		base, after = "0.0.0", fmt.Sprintf("git%d.%s", commits, v)
	case m != nil:
		base, after = m[1], "git"+m[2]+"."+m[3]
	default:
		base = v
	}
	base = strings.TrimPrefix(base, "v")
	if tag, pre, ok := strings.Cut(base, "-"); ok {
		base = tag + "~" + strings.ReplaceAll(pre, "-", ".")
	}
	if dirty {
		if after != "" {
			after += "."
		}
		after += "dirty"
	}
	if after != "" {
		base += "+" + after
	}
	if !debianRE.MatchString(base) {
		return "", fmt.Errorf("version %q gives %q, which is not a Debian version: tag releases as vMAJOR.MINOR.PATCH (or with -rcN)", describe, base)
	}
	return base, nil
}

// packagedUnit is systemd/pacsd.service with pacsd at binPath: its one
// ExecStart line names /usr/local/bin/pacsd, where pacsd goes by hand. No
// side effects.
func packagedUnit(unit []byte) ([]byte, error) {
	lines := bytes.SplitAfter(unit, []byte("\n"))
	found := 0
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte(sourceExec)) {
			found++
			lines[i] = append([]byte("ExecStart="+binPath+" "), l[len(sourceExec):]...)
		}
	}
	if found != 1 {
		return nil, fmt.Errorf("systemd/pacsd.service has %d lines beginning %q, want 1: the package points it at %s", found, sourceExec, binPath)
	}
	return bytes.Join(lines, nil), nil
}

// shells are those whose completion scripts the package holds, and where
// each shell's own package looks for them.
var (
	shells          = []string{"bash", "zsh", "fish"}
	completionPaths = map[string]string{
		"bash": "/usr/share/bash-completion/completions/pacsd",
		"zsh":  "/usr/share/zsh/vendor-completions/_pacsd",
		"fish": "/usr/share/fish/vendor_completions.d/pacsd.fish",
	}
)

// layout is where packageInfo finds what goes into the package.
type layout struct {
	root     string   // the repository
	stage    string   // files made for the package: pacsd.service, completion.SHELL
	binary   string   // the pacsd binary
	examples []string // examples/*.hcl
}

// packageInfo describes the package: what goes where, with which mode, the
// conffiles and the maintainer scripts. No side effects.
func packageInfo(l layout, version, arch string) *nfpm.Info {
	src := func(p ...string) string { return filepath.Join(append([]string{l.root}, p...)...) }
	file := func(source, dest string, mode os.FileMode) *files.Content {
		return &files.Content{Source: source, Destination: dest, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	conffile := func(source, dest string, mode os.FileMode) *files.Content {
		c := file(source, dest, mode)
		c.Type = files.TypeConfig
		return c
	}
	contents := files.Contents{
		file(l.binary, binPath, 0o755),
		file(filepath.Join(l.stage, "pacsd.service"), unitPath, 0o644),
		file(src("systemd", "pacsd.sysusers"), "/usr/lib/sysusers.d/pacsd.conf", 0o644),
		// Group pacsd and the modes below are set by the postinst, once
		// the group exists.
		{Destination: "/etc/pacsd", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
		conffile(src("systemd", "pacsd.env"), "/etc/pacsd/pacsd.env", 0o640),
		conffile(src("examples", "replicated.hcl"), "/etc/pacsd/pacs.hcl.example", 0o640),
		file(src("README.md"), "/usr/share/doc/pacsd/README.md", 0o644),
	}
	for _, sh := range shells {
		contents = append(contents, file(filepath.Join(l.stage, "completion."+sh), completionPaths[sh], 0o644))
	}
	for _, e := range l.examples {
		contents = append(contents, file(e, "/usr/share/doc/pacsd/examples/"+filepath.Base(e), 0o644))
	}
	return &nfpm.Info{
		Name:          "pacsd",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "pacsd <https://github.com/pacsd/pacsd>",
		Homepage:      "https://github.com/pacsd/pacsd",
		Description: "PostgreSQL primary/standby topology daemon for the dcm4chee archive\n" +
			"pacsd keeps the PostgreSQL primary/standby containers of a dcm4chee DICOM\n" +
			"archive converged to one HCL file (/etc/pacsd/pacs.hcl): containers,\n" +
			"pg_hba.conf, settings, roles, replication slots, base backups, switchover\n" +
			"and failover. The service is installed but not enabled: write the topology\n" +
			"file first, then systemctl enable --now pacsd.",
		Overridables: nfpm.Overridables{
			// systemd-sysusers makes the user pacsd; systemd provides it,
			// as does systemd-standalone-sysusers. procps: /bin/kill, the
			// unit's ExecReload.
			Depends:    []string{"systemd | systemd-sysusers", "procps"},
			Recommends: []string{"docker.io"},
			Contents:   contents,
			Scripts: nfpm.Scripts{
				PostInstall: src("internal", "dist", "debian", "postinst"),
				PreRemove:   src("internal", "dist", "debian", "prerm"),
				PostRemove:  src("internal", "dist", "debian", "postrm"),
			},
		},
	}
}
