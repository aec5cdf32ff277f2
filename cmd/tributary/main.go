// Command tributary is the Tributary binary: `tributary broker` runs the
// Kafka-compatible broker; other subcommands (topic and group tools,
// produce, consume, perf) are wired here as they land.
package main

import (
	"fmt"
	"os"
)

// subcommands maps a name to its entry point; each gets the arguments
// after its name and returns the process exit code.
var subcommands = map[string]func(args []string) int{
	"broker": runBroker,
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "tributary: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(cmd(os.Args[2:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tributary <command> [flags]")
	fmt.Fprintln(os.Stderr, "commands:")
	for name := range subcommands {
		fmt.Fprintf(os.Stderr, "  %s\n", name)
	}
	fmt.Fprintln(os.Stderr, "run 'tributary <command> -h' for a command's flags")
}
