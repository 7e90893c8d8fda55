package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// runVersion prints the version of pacsd and of the Go toolchain that built it.
func runVersion(c *cli, args []string) int {
	fs := c.newFlags("version", "")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(c.stdout, "pacsd %s (%s)\n", versionString(), runtime.Version())
	return exitOK
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
