// Command tributary is the Tributary binary: `tributary broker` runs the
// Kafka-compatible broker; topic, group, cluster, produce, consume and
// perf are client tools in rpk's style, built on the SDK (command.go holds
// their shared flags, errors and exit statuses; completion.go the shell
// completion scripts, generated from the same command table).
package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
)

// subcommands maps a name to its entry point; each gets the arguments
// after its name and returns the process exit code.
var subcommands map[string]func(args []string) int

// summaries are the one-line descriptions `tributary help` shows.
var summaries = map[string]string{
	"broker":     "run the Kafka-compatible broker",
	"topic":      topicCmd.summary,
	"group":      groupCmd.summary,
	"txn":        txnCmd.summary,
	"cluster":    clusterCmd.summary,
	"produce":    produceCmd.summary,
	"consume":    consumeCmd.summary,
	"perf":       perfCmd.summary,
	"version":    "print the version",
	"completion": "print a shell completion script: completion bash|zsh|fish",
}

func init() {
	// Set here rather than in the declaration: completion reads the
	// table, which would make the initialization cyclic.
	subcommands = map[string]func(args []string) int{
		"broker":     runBroker,
		"topic":      topicCmd.run,
		"group":      groupCmd.run,
		"txn":        txnCmd.run,
		"cluster":    clusterCmd.run,
		"produce":    produceCmd.run,
		"consume":    consumeCmd.run,
		"perf":       perfCmd.run,
		"version":    runVersion,
		"completion": runCompletion,
	}
}

func main() {
	os.Exit(runMain(os.Args[1:]))
}

// runMain dispatches: help (asked for) goes to stdout with status 0; a
// missing or unknown command is a usage error on stderr with status 2.
func runMain(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if cmd, ok := subcommands[args[1]]; ok {
				return cmd(append(args[2:], "-h"))
			}
		}
		usage(os.Stdout)
		return 0
	case "--version", "-version":
		return runVersion(nil)
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "tributary: unknown command %q\n", args[0])
		usage(os.Stderr)
		return 2
	}
	return cmd(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tributary <command> [flags]")
	fmt.Fprintln(w, "commands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range slices.Sorted(maps.Keys(subcommands)) {
		fmt.Fprintf(tw, "  %s\t%s\n", name, summaries[name])
	}
	tw.Flush()
	fmt.Fprintln(w, "run 'tributary <command> -h' for a command's flags; TRIBUTARY_BROKERS sets the default for -b")
}
