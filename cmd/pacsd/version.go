package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// newVersionCmd is 'pacsd version', which prints what 'pacsd --version' prints.
func newVersionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of pacsd",
		Long: `Prints the version of pacsd and of the Go toolchain that built it, as
'pacsd --version' does. A build without a stamped version says "devel".`,
		Example:           "  pacsd version\n  pacsd --version",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: action(func([]string) int {
			fmt.Fprint(c.stdout, versionText())
			return exitOK
		}),
	}
}

// versionText is the line 'pacsd version' and 'pacsd --version' print.
func versionText() string {
	return fmt.Sprintf("pacsd %s (%s)\n", versionString(), runtime.Version())
}

// versionString is the version stamped at build time, the module's, or "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "devel"
}
