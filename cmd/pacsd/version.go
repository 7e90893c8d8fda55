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
	v := version
	if v == "" {
		v = "devel"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
	}
	fmt.Fprintf(c.stdout, "pacsd %s (%s)\n", v, runtime.Version())
	return exitOK
}
