// Command tributary is the Tributary binary: `tributary broker` runs the
// Kafka-compatible broker; topic, group, cluster, produce, consume and
// perf are client tools in rpk's style, built on the SDK (command.go holds
// their shared flags, errors and exit statuses).
package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
)

// subcommands maps a name to its entry point; each gets the arguments
// after its name and returns the process exit code.
var subcommands = map[string]func(args []string) int{
	"broker":  runBroker,
	"topic":   topicCmd.run,
	"group":   groupCmd.run,
	"cluster": clusterCmd.run,
	"produce": produceCmd.run,
	"consume": consumeCmd.run,
	"perf":    perfCmd.run,
}

// summaries are the one-line descriptions `tributary help` shows.
var summaries = map[string]string{
	"broker":  "run the Kafka-compatible broker",
	"topic":   topicCmd.summary,
	"group":   groupCmd.summary,
	"cluster": clusterCmd.summary,
	"produce": produceCmd.summary,
	"consume": consumeCmd.summary,
	"perf":    perfCmd.summary,
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
	tw := tabwriter.NewWriter(os.Stderr, 0, 0, 2, ' ', 0)
	for _, name := range slices.Sorted(maps.Keys(subcommands)) {
		fmt.Fprintf(tw, "  %s\t%s\n", name, summaries[name])
	}
	tw.Flush()
	fmt.Fprintln(os.Stderr, "run 'tributary <command> -h' for a command's flags")
}
