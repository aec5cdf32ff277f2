package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/client"
)

// The client tools (topic, group, produce, consume, cluster, perf) share
// this small framework: rpk-style flags that may follow positional
// arguments, -b/--brokers and --format on every command, errors mapped to
// one plain sentence, and exit status 2 for usage errors, 1 for others.

// defaultBrokers is used when neither -b nor TRIBUTARY_BROKERS is set.
const defaultBrokers = "127.0.0.1:9092"

// dialTimeout bounds one connection attempt, so that a broker that is
// down is reported within seconds rather than after the SDK's 10s.
const dialTimeout = 3 * time.Second

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// tool is one invocation's environment: where output goes and the
// common flags, so that tests can run commands in-process as well.
type tool struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	brokers string
	format  string
}

// leaf is a command that does the work: `topic create`, `produce`, ...
type leaf struct {
	name    string // full name, e.g. "topic create"
	args    string // synopsis after the name, e.g. "NAME [flags]"
	summary string
	// flags registers the command's own flags and returns the function
	// that runs it with the positional arguments.
	flags func(f *flagSet) func(ctx context.Context, t *tool, args []string) error
}

// branch is a command with subcommands: `topic`, `group`, `perf`, `cluster`.
type branch struct {
	name    string
	summary string
	subs    []*leaf
}

// run dispatches to a subcommand.
func (b *branch) run(args []string) int {
	if len(args) == 0 {
		b.usage(os.Stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			for _, l := range b.subs {
				if l.name == b.name+" "+args[1] {
					return l.run([]string{"-h"})
				}
			}
		}
		b.usage(os.Stdout) // asked for: stdout, so it can be paged or grepped
		return 0
	}
	for _, l := range b.subs {
		if l.name == b.name+" "+args[0] {
			return l.run(args[1:])
		}
	}
	fmt.Fprintf(os.Stderr, "tributary: unknown command %q for %q; run 'tributary %s -h' for the list.\n", args[0], "tributary "+b.name, b.name)
	return 2
}

func (b *branch) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: tributary %s <command> [flags]\n\n%s\n\ncommands:\n", b.name, b.summary)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range b.subs {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimPrefix(l.name, b.name+" "), l.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nrun 'tributary %s <command> -h' for a command's flags\n", b.name)
}

// run parses the flags, runs the command and maps its error to a
// message and an exit status.
func (l *leaf) run(args []string) int {
	t := &tool{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return l.exec(ctx, t, args)
}

func (l *leaf) exec(ctx context.Context, t *tool, args []string) int {
	f := newFlagSet(l, t)
	fn := l.flags(f)
	pos, err := f.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		f.usage(t.stdout)
		return 0
	}
	if err == nil {
		err = t.validate()
	}
	if err == nil {
		err = fn(ctx, t, pos)
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(t.stderr, "tributary %s: %s\n", l.name, sentence(ue.msg))
		fmt.Fprintf(t.stderr, "usage: tributary %s %s (run with -h for help)\n", l.name, l.args)
		return 2
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return 130 // interrupted, as shells report SIGINT
	}
	fmt.Fprintf(t.stderr, "tributary %s: %s\n", l.name, sentence(t.explain(err)))
	return 1
}

func (t *tool) validate() error {
	if t.format != "text" && t.format != "json" {
		return usagef("--format must be text or json, not %q", t.format)
	}
	if len(t.brokerList()) == 0 {
		return usagef("--brokers is empty")
	}
	for _, b := range t.brokerList() {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return usagef("broker address %q is not host:port", b)
		}
	}
	return nil
}

func (t *tool) brokerList() []string {
	var out []string
	for _, b := range strings.Split(t.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func (t *tool) json() bool { return t.format == "json" }

// clientOpts are the client options every SDK object of a command gets.
func (t *tool) clientOpts() []client.Opt {
	return []client.Opt{
		client.SeedBrokers(t.brokerList()...),
		client.ClientID("tributary-cli"),
		client.DialTimeout(dialTimeout),
		// A person is waiting: a broker that is down is reported after
		// about 3s of retries rather than 5s.
		client.RetryBackoffMax(500 * time.Millisecond),
	}
}

// admin returns an admin client; the caller closes it.
func (t *tool) admin() (*admin.Client, error) {
	return admin.New(admin.ClientOptions(t.clientOpts()...))
}

// adminCtx returns an admin client and ctx bounded by the command
// timeout (withTimeout), and a func the caller calls to end both.
func (t *tool) adminCtx(ctx context.Context) (context.Context, *admin.Client, func(), error) {
	a, err := t.admin()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := withTimeout(ctx)
	return ctx, a, func() { cancel(); a.Close() }, nil
}

// groupAdmin is adminCtx after checking that the cluster answers at all:
// group calls retry an unreachable coordinator until their context ends,
// which would leave the user waiting 30s.
func (t *tool) groupAdmin(ctx context.Context) (context.Context, *admin.Client, func(), error) {
	ctx, a, done, err := t.adminCtx(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := a.DescribeCluster(ctx); err != nil {
		done()
		return nil, nil, nil, err
	}
	return ctx, a, done, nil
}

// explain turns an SDK error into what a user needs to read.
func (t *tool) explain(err error) string {
	var nf notFoundError
	switch {
	case errors.As(err, &nf):
		return nf.Error()
	case errors.Is(err, client.ErrConnection):
		cause := err.Error()
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			cause = op.Err.Error()
		} else if errors.Is(err, context.DeadlineExceeded) {
			cause = "timed out"
		}
		return fmt.Sprintf("cannot reach broker at %s: %s", strings.Join(t.brokerList(), ","), cause)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from the cluster at %s in time: %v", strings.Join(t.brokerList(), ","), err)
	}
	msg := err.Error()
	for _, p := range []string{"admin: ", "producer: ", "consumer: ", "client: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return dedupe(msg)
}

// dedupe drops a ": "-separated part that repeats the one before it. Each
// layer that wraps an error adds its context, and two layers can add the
// same (the producer prefixes a broker's error message with its code,
// and the message may start with the code already), which reads as
// "MESSAGE_TOO_LARGE: MESSAGE_TOO_LARGE: ...".
func dedupe(msg string) string {
	parts := strings.Split(msg, ": ")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

// notFoundError is a topic or group that does not exist.
type notFoundError struct{ kind, name string }

func (e notFoundError) Error() string { return fmt.Sprintf("%s %q does not exist", e.kind, e.name) }

// topicErr names topic in err, turning UNKNOWN_TOPIC_OR_PARTITION into
// a plain "does not exist".
func topicErr(topic string, err error) error {
	if errors.Is(err, tributary.ErrUnknownTopicOrPartition) || errors.Is(err, tributary.ErrUnknownTopicId) {
		return notFoundError{"topic", topic}
	}
	return fmt.Errorf("topic %q: %w", topic, err)
}

// sentence makes msg one line ending with a period.
func sentence(msg string) string {
	msg = strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
	if msg == "" {
		return "failed."
	}
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") && !strings.HasSuffix(msg, "!") {
		msg += "."
	}
	return msg
}

// flagSet is a flag.FlagSet that allows flags after positional arguments
// (as rpk and cobra do), pairs short and long names, and prints them
// together in -h.
type flagSet struct {
	fs   *flag.FlagSet
	leaf *leaf
	docs []flagDoc
	// optional are flags whose value may be left out: name (without
	// dashes) → the value implied, and which words count as a value.
	optional map[string]optionalFlag
}

type optionalFlag struct {
	implied string
	isValue func(string) bool
}

type flagDoc struct {
	short, long, arg, usage, def string
}

func newFlagSet(l *leaf, t *tool) *flagSet {
	fs := flag.NewFlagSet(l.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by exec, -h by usage
	f := &flagSet{fs: fs, leaf: l}
	def := os.Getenv("TRIBUTARY_BROKERS")
	if def == "" {
		def = defaultBrokers
	}
	f.String(&t.brokers, "b", "brokers", "HOSTS", def, "comma-separated seed brokers (env TRIBUTARY_BROKERS)")
	f.String(&t.format, "", "format", "FORMAT", "text", "output format: text or json")
	return f
}

func (f *flagSet) doc(short, long, arg, def, usage string) {
	f.docs = append(f.docs, flagDoc{short: short, long: long, arg: arg, usage: usage, def: def})
}

// String registers a string flag under a short (may be "") and long name.
func (f *flagSet) String(p *string, short, long, arg, def, usage string) {
	*p = def
	f.Var((*stringValue)(p), short, long, arg, def, usage)
}

// Int registers an int flag.
func (f *flagSet) Int(p *int, short, long, arg string, def int, usage string) {
	*p = def
	f.Var((*intValue)(p), short, long, arg, fmt.Sprint(def), usage)
}

// Bool registers a boolean flag.
func (f *flagSet) Bool(p *bool, short, long string, usage string) {
	for _, n := range []string{short, long} {
		if n != "" {
			f.fs.BoolVar(p, n, false, usage)
		}
	}
	f.doc(short, long, "", "", usage)
}

// List registers a repeatable flag; values may also be comma-separated
// when split is set.
func (f *flagSet) List(p *[]string, short, long, arg string, split bool, usage string) {
	f.Var(&listValue{p: p, split: split}, short, long, arg, "", usage)
}

// Var registers a flag.Value.
func (f *flagSet) Var(v flag.Value, short, long, arg, def, usage string) {
	for _, n := range []string{short, long} {
		if n != "" {
			f.fs.Var(v, n, usage)
		}
	}
	f.doc(short, long, arg, def, usage)
}

// Optional registers a string flag whose value may be left out: a bare
// -e (followed by nothing, or by a word isValue refuses, such as another
// flag or a topic) means implied. aliases are further long names.
func (f *flagSet) Optional(p *string, short, long, arg, implied string, isValue func(string) bool, usage string, aliases ...string) {
	*p = ""
	f.Var((*stringValue)(p), short, long, "["+arg+"]", "", usage)
	if f.optional == nil {
		f.optional = map[string]optionalFlag{}
	}
	for _, n := range append([]string{short, long}, aliases...) {
		if n == "" {
			continue
		}
		if n != short && n != long {
			f.fs.Var((*stringValue)(p), n, usage)
		}
		f.optional[n] = optionalFlag{implied, isValue}
	}
}

// fillOptional gives optional flags written without a value their
// implied value, so the flag package (which would take the next word as
// the value) sees -e=end.
func (f *flagSet) fillOptional(args []string) []string {
	if len(f.optional) == 0 {
		return args
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if o, ok := f.optional[name]; ok && strings.HasPrefix(a, "-") {
			if i+1 >= len(args) || !o.isValue(args[i+1]) {
				a += "=" + o.implied
			}
		}
		out = append(out, a)
	}
	return out
}

// parse parses args, letting flags and positional arguments mix; "--"
// ends the flags.
func (f *flagSet) parse(args []string) ([]string, error) {
	args = f.fillOptional(args)
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			msg := err.Error()
			if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown flag " + name
			}
			return nil, usageError{msg}
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (f *flagSet) usage(w io.Writer) {
	l := f.leaf
	fmt.Fprintf(w, "usage: tributary %s %s\n\n%s\n\nflags:\n", l.name, l.args, l.summary)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	docs := slices.Clone(f.docs)
	// The command's own flags first, then -b and --format.
	docs = append(docs[2:], docs[:2]...)
	for _, d := range docs {
		names := "    --" + d.long
		if d.short != "" {
			names = "-" + d.short + ", --" + d.long
		}
		if d.arg != "" {
			names += " " + d.arg
		}
		usage := d.usage
		if d.def != "" {
			usage += " (default " + d.def + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", names, usage)
	}
	tw.Flush()
}

type stringValue string

func (s *stringValue) String() string     { return string(*s) }
func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }

type intValue int

func (i *intValue) String() string { return fmt.Sprint(int(*i)) }
func (i *intValue) Set(v string) error {
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || fmt.Sprint(n) != strings.TrimPrefix(v, "+") {
		return fmt.Errorf("%q is not a whole number", v)
	}
	*i = intValue(n)
	return nil
}

type listValue struct {
	p     *[]string
	split bool
}

func (l *listValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listValue) Set(v string) error {
	if !l.split {
		*l.p = append(*l.p, v)
		return nil
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.p = append(*l.p, s)
		}
	}
	return nil
}

// keyValues parses key=value flags into a map.
func keyValues(flagName string, kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q is not key=value", flagName, kv)
		}
		out[k] = v
	}
	return out, nil
}

// withTimeout bounds one admin command, so that a cluster that accepts
// connections but never answers does not hang the tool.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}
