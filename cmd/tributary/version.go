package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at release builds with
// -ldflags "-X main.version=v1.2.3"; otherwise the module version and VCS
// stamp that `go build` records are shown.
var version = ""

// versionString is "tributary VERSION (commit REV[, modified], TIME) GOVERSION".
func versionString() string {
	v := version
	var details []string
	goVersion := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "" {
			v = bi.Main.Version
		}
		var rev, at string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			c := "commit " + rev
			if modified {
				c += ", modified"
			}
			details = append(details, c)
		}
		if at != "" {
			details = append(details, at)
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	s := "tributary " + v
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	if goVersion != "" {
		s += " " + goVersion
	}
	return s
}

// runVersion is `tributary version`.
func runVersion(args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Println("usage: tributary version\n\nprint the version, the commit it was built from and the Go version")
		return 0
	}
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "tributary version: unexpected arguments %q\n", args)
		return 2
	}
	fmt.Println(versionString())
	return 0
}
