package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// Shell completion: `tributary completion bash|zsh|fish` prints a script
// generated from the same tables that dispatch the commands and parse
// their flags, so a new command or flag is completed without editing the
// scripts. Commands and subcommands complete by name, flags (short and
// long) by name once a word starts with "-", anything else as a file.

// compCommand is one completable command: a top-level one, or a
// subcommand of a branch (name "topic create").
type compCommand struct {
	name    string
	summary string
	subs    []compCommand // a branch's subcommands
	flags   []flagDoc
	words   []string // fixed arguments (completion's shells)
}

// brokerFlags are `tributary broker`'s flags, parsed by the flag package
// rather than flagSet.
var brokerFlags = []flagDoc{
	{long: "config", arg: "FILE", usage: "Kafka server.properties file"},
	{long: "override", arg: "key=value", usage: "broker property, applied after --config"},
	{long: "log-level", arg: "LEVEL", usage: "debug, info, warn or error"},
}

// leafFlags returns l's flags, its own and the common ones.
func leafFlags(l *leaf) []flagDoc {
	f := newFlagSet(l, &tool{})
	l.flags(f)
	return append(f.docs[2:], f.docs[:2]...)
}

// completionTree describes every command, sorted by name.
func completionTree() []compCommand {
	branches := map[string]*branch{"topic": topicCmd, "group": groupCmd, "txn": txnCmd, "cluster": clusterCmd, "perf": perfCmd}
	leaves := map[string]*leaf{"produce": produceCmd, "consume": consumeCmd}
	var out []compCommand
	for _, name := range slices.Sorted(maps.Keys(subcommands)) {
		c := compCommand{name: name, summary: summaries[name]}
		switch {
		case branches[name] != nil:
			for _, l := range branches[name].subs {
				c.subs = append(c.subs, compCommand{name: strings.TrimPrefix(l.name, name+" "), summary: l.summary, flags: leafFlags(l)})
			}
		case leaves[name] != nil:
			c.flags = leafFlags(leaves[name])
		case name == "broker":
			c.flags = brokerFlags
		case name == "completion":
			c.words = []string{"bash", "zsh", "fish"}
		}
		out = append(out, c)
	}
	return out
}

func flagNames(fs []flagDoc) []string {
	var out []string
	for _, f := range fs {
		if f.short != "" {
			out = append(out, "-"+f.short)
		}
		out = append(out, "--"+f.long)
	}
	return out
}

func names(cs []compCommand) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

const completionUsage = `usage: tributary completion bash|zsh|fish

Print a completion script for the shell. Load it with:
  bash:  source <(tributary completion bash)      (e.g. in ~/.bashrc)
  zsh:   source <(tributary completion zsh)       (e.g. in ~/.zshrc, after compinit)
  fish:  tributary completion fish | source       (or save it to ~/.config/fish/completions/tributary.fish)
`

// runCompletion is `tributary completion SHELL`.
func runCompletion(args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Print(completionUsage)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(os.Stderr, "tributary completion: name one shell.\n"+completionUsage)
		return 2
	}
	tree := completionTree()
	switch args[0] {
	case "bash":
		writeBash(os.Stdout, tree)
	case "zsh":
		writeZsh(os.Stdout, tree)
	case "fish":
		writeFish(os.Stdout, tree)
	default:
		fmt.Fprintf(os.Stderr, "tributary completion: unknown shell %q.\n%s", args[0], completionUsage)
		return 2
	}
	return 0
}

func writeBash(w io.Writer, tree []compCommand) {
	fmt.Fprintf(w, `# bash completion for tributary; load with: source <(tributary completion bash)
_tributary() {
    local cur="${COMP_WORDS[COMP_CWORD]}" words=""
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W %q -- "$cur"))
        return
    fi
    case "${COMP_WORDS[1]}" in
`, strings.Join(names(tree), " "))
	for _, c := range tree {
		fmt.Fprintf(w, "    %s)\n", c.name)
		switch {
		case len(c.subs) > 0:
			fmt.Fprintf(w, "        if [[ $COMP_CWORD -eq 2 ]]; then\n            COMPREPLY=($(compgen -W %q -- \"$cur\"))\n            return\n        fi\n", strings.Join(names(c.subs), " "))
			fmt.Fprintf(w, "        case \"${COMP_WORDS[2]}\" in\n")
			for _, s := range c.subs {
				fmt.Fprintf(w, "        %s) words=%q ;;\n", s.name, strings.Join(flagNames(s.flags), " "))
			}
			fmt.Fprintf(w, "        esac\n        ;;\n")
		case len(c.words) > 0:
			fmt.Fprintf(w, "        [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W %q -- \"$cur\"))\n        return\n        ;;\n", strings.Join(c.words, " "))
		default:
			fmt.Fprintf(w, "        words=%q\n        ;;\n", strings.Join(flagNames(c.flags), " "))
		}
	}
	fmt.Fprint(w, `    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}
complete -o default -F _tributary tributary
`)
}

// zshEscape escapes s for the description part of a single-quoted zsh
// "name:description" word.
func zshEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "'", `'\''`), ":", `\:`)
}

func zshDescribed(cs []compCommand) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, "'"+c.name+":"+zshEscape(c.summary)+"'")
	}
	return strings.Join(parts, " ")
}

func writeZsh(w io.Writer, tree []compCommand) {
	fmt.Fprintf(w, `#compdef tributary
# zsh completion for tributary; load with: source <(tributary completion zsh)
_tributary() {
    local -a cmds flags
    if (( CURRENT == 2 )); then
        cmds=(%s)
        _describe 'command' cmds
        return
    fi
    case $words[2] in
`, zshDescribed(tree))
	for _, c := range tree {
		fmt.Fprintf(w, "    %s)\n", c.name)
		switch {
		case len(c.subs) > 0:
			fmt.Fprintf(w, "        if (( CURRENT == 3 )); then\n            cmds=(%s)\n            _describe 'command' cmds\n            return\n        fi\n", zshDescribed(c.subs))
			fmt.Fprintf(w, "        case $words[3] in\n")
			for _, s := range c.subs {
				fmt.Fprintf(w, "        %s) flags=(%s) ;;\n", s.name, strings.Join(flagNames(s.flags), " "))
			}
			fmt.Fprintf(w, "        esac\n        ;;\n")
		case len(c.words) > 0:
			fmt.Fprintf(w, "        (( CURRENT == 3 )) && compadd -- %s\n        return\n        ;;\n", strings.Join(c.words, " "))
		default:
			fmt.Fprintf(w, "        flags=(%s)\n        ;;\n", strings.Join(flagNames(c.flags), " "))
		}
	}
	fmt.Fprint(w, `    esac
    if [[ $PREFIX == -* ]]; then
        compadd -- $flags
    else
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _tributary "$@"
else
    compdef _tributary tributary
fi
`)
}

// fishQuote quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func writeFish(w io.Writer, tree []compCommand) {
	fmt.Fprintln(w, "# fish completion for tributary; load with: tributary completion fish | source")
	fmt.Fprintln(w, "complete -c tributary -e")
	top := strings.Join(names(tree), " ")
	for _, c := range tree {
		fmt.Fprintf(w, "complete -c tributary -f -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n", top, c.name, fishQuote(c.summary))
	}
	flagLines := func(cond string, fs []flagDoc) {
		for _, f := range fs {
			line := "complete -c tributary -n " + fishQuote(cond)
			if f.short != "" {
				line += " -s " + f.short
			}
			line += " -l " + f.long
			if f.arg != "" {
				line += " -r"
			}
			fmt.Fprintln(w, line+" -d "+fishQuote(f.usage))
		}
	}
	for _, c := range tree {
		switch {
		case len(c.subs) > 0:
			subs := strings.Join(names(c.subs), " ")
			for _, s := range c.subs {
				fmt.Fprintf(w, "complete -c tributary -f -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s -d %s\n", c.name, subs, s.name, fishQuote(s.summary))
				flagLines("__fish_seen_subcommand_from "+c.name+"; and __fish_seen_subcommand_from "+s.name, s.flags)
			}
		case len(c.words) > 0:
			fmt.Fprintf(w, "complete -c tributary -f -n '__fish_seen_subcommand_from %s' -a %s\n", c.name, fishQuote(strings.Join(c.words, " ")))
		default:
			flagLines("__fish_seen_subcommand_from "+c.name, c.flags)
		}
	}
}
