package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/storage"
)

// stringList collects a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runBroker is `tributary broker [--config server.properties]
// [--override key=value]...`. Built-in defaults listen on
// 127.0.0.1:9092 with data in ./tributary-data; the properties file is
// applied over them and the overrides last. SIGINT or SIGTERM closes the
// broker cleanly (logs flushed, clean-shutdown markers written) and exits 0.
func runBroker(args []string) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // -h and errors are printed below
	configPath := fs.String("config", "", "Kafka server.properties file")
	var overrides stringList
	fs.Var(&overrides, "override", "key=value broker property, applied after --config (repeatable)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	nodes := fs.Int("nodes", 1, "run a cluster of this many nodes in one process (development): client ports 9092, 9094, ..., controller ports one above each, data in <log.dirs>/node-N")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, brokerUsage)
			return 0
		}
		fmt.Fprintf(os.Stderr, "tributary broker: %v\nusage: tributary broker [--config FILE] [--override key=value]... (run with -h for help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		// Kafka's kafka-server-start.sh takes the file as an argument.
		if *configPath != "" || fs.NArg() > 1 {
			fmt.Fprintln(os.Stderr, "tributary broker: unexpected arguments:", fs.Args())
			return 2
		}
		*configPath = fs.Arg(0)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "tributary broker: --log-level:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	installCleanerKillHook()

	cfg, err := loadBrokerConfig(*configPath, overrides, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tributary broker:", err)
		return 1
	}
	if err := inheritListeners(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "tributary broker:", err)
		return 1
	}
	cfgs := []broker.Config{cfg}
	if *nodes > 1 {
		if cfgs, err = clusterConfigs(cfg, *nodes); err != nil {
			fmt.Fprintln(os.Stderr, "tributary broker:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	brokers := make([]*broker.Broker, 0, len(cfgs))
	for _, c := range cfgs {
		// The address is said once, by this line (tests and scripts
		// wait for it to learn the port), not also by the broker's log.
		c.Announce = func(b *broker.Broker) {
			if a := b.HTTPAddr(); a != "" {
				// Before the listening line: whoever waits for that
				// one has seen this one too.
				fmt.Fprintf(os.Stderr, "tributary console on http://%s/\n", a)
			}
			fmt.Fprintf(os.Stderr, "tributary broker listening on %s\n", b.Addr())
		}
		b, err := broker.New(c)
		if err != nil {
			for _, o := range brokers {
				o.Close()
			}
			fmt.Fprintln(os.Stderr, "tributary broker:", err)
			return 1
		}
		brokers = append(brokers, b)
	}
	errs := make(chan error, len(brokers))
	for _, b := range brokers {
		go func() { errs <- b.Run(ctx) }()
	}
	code := 0
	for range brokers {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, "tributary broker:", err)
			code = 1
			stop() // one node failing stops the development cluster
		}
	}
	return code
}

// installCleanerKillHook is a test hook, not a feature: with
// TRIBUTARY_TEST_CLEANER_KILL_AT set to a point of a cleaning pass
// (storage.SetCleanerHook: cleaned-written, swap-marked, old-renamed,
// log-renamed, swapped, checkpointed), the process SIGKILLs itself the
// first time a pass reaches it, so the broker's crash tests
// (broker/cleaner_process_test.go) can stop a real broker exactly there.
func installCleanerKillHook() {
	point := os.Getenv("TRIBUTARY_TEST_CLEANER_KILL_AT")
	if point == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "tributary broker: TEST HOOK: will SIGKILL itself at cleaner point %q\n", point)
	storage.SetCleanerHook(func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	})
}

// clusterConfigs derives the configurations of an n-node development
// cluster from one: node ids 1..n, client ports from the first PLAINTEXT
// listener's port in steps of 2, each controller listener one above its
// client port, log dirs <log.dirs>/node-N.
func clusterConfigs(base broker.Config, n int) ([]broker.Config, error) {
	host, port := "127.0.0.1", 9092
	for _, l := range strings.Split(base.Listeners, ",") {
		name, hp, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok || !strings.EqualFold(name, "PLAINTEXT") {
			continue
		}
		h, p, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("listeners: %v", err)
		}
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("listeners: bad port %q", p)
		}
		break
	}
	// Each node's client and controller listener: fixed ports from the
	// first in steps of 2 (controller one above), or, for port 0, sockets
	// bound now on ports the kernel picks, so the quorum's addresses are
	// known before any node starts (scripts and CI read the "listening"
	// lines).
	client := make([]net.Listener, n)
	ctrl := make([]net.Listener, n)
	addr := func(i, off int) string {
		if port == 0 {
			if off == 0 {
				return client[i].Addr().String()
			}
			return ctrl[i].Addr().String()
		}
		return net.JoinHostPort(host, strconv.Itoa(port+2*i+off))
	}
	if port == 0 {
		for i := range n {
			for _, ln := range []*net.Listener{&client[i], &ctrl[i]} {
				l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
				if err != nil {
					for _, o := range append(client, ctrl...) {
						if o != nil {
							o.Close()
						}
					}
					return nil, err
				}
				*ln = l
			}
		}
	}
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, addr(i, 1)))
	}
	out := make([]broker.Config, 0, n)
	for i := range n {
		c := base
		c.NodeID = int32(i + 1)
		c.Listener, c.ControllerListener = client[i], ctrl[i]
		c.Listeners = fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s", addr(i, 0), addr(i, 1))
		c.AdvertisedListeners = ""
		c.ControllerQuorumVoters = strings.Join(voters, ",")
		c.LogDirs = []string{filepath.Join(base.LogDirs[0], fmt.Sprintf("node-%d", i+1))}
		if c.OffsetsTopicReplicationFactor == 1 {
			c.OffsetsTopicReplicationFactor = int16(min(n, 3))
		}
		if c.TransactionStateLogReplicationFactor == 1 {
			c.TransactionStateLogReplicationFactor = int16(min(n, 3))
			c.TransactionStateLogMinIsr = int32(min(n, 2))
		}
		if base.Logger != nil {
			c.Logger = base.Logger.With("node", i+1)
		}
		out = append(out, c)
	}
	return out, nil
}

// inheritListeners takes sockets a parent process opened for this broker
// (TRIBUTARY_LISTEN_FDS=PLAINTEXT:3,CONTROLLER:4): tests bind the ports
// themselves, so a cluster's addresses are known before its processes
// start and stay the same when one is killed and started again.
func inheritListeners(cfg *broker.Config) error {
	spec := os.Getenv("TRIBUTARY_LISTEN_FDS")
	if spec == "" {
		return nil
	}
	for _, part := range strings.Split(spec, ",") {
		name, fdStr, ok := strings.Cut(part, ":")
		fd, err := strconv.Atoi(fdStr)
		if !ok || err != nil || fd < 3 {
			return fmt.Errorf("TRIBUTARY_LISTEN_FDS: bad entry %q", part)
		}
		f := os.NewFile(uintptr(fd), name)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("TRIBUTARY_LISTEN_FDS: fd %d: %v", fd, err)
		}
		switch strings.ToUpper(name) {
		case "PLAINTEXT":
			cfg.Listener = ln
		case "CONTROLLER":
			cfg.ControllerListener = ln
		default:
			ln.Close()
			return fmt.Errorf("TRIBUTARY_LISTEN_FDS: unknown listener %q", name)
		}
	}
	return nil
}

// brokerUsage is `tributary broker -h`.
const brokerUsage = `usage: tributary broker [--config server.properties] [--override key=value]... [--log-level LEVEL]

Run the Kafka-compatible broker until SIGINT or SIGTERM, which close it
cleanly. Settings are Kafka's broker properties (server.properties names):
the built-in defaults, then the --config file, then each --override.

The port and address: listeners (default PLAINTEXT://127.0.0.1:9092), e.g.
  tributary broker --override listeners=PLAINTEXT://127.0.0.1:9093
  tributary broker --override listeners=PLAINTEXT://0.0.0.0:9092 \
                   --override advertised.listeners=PLAINTEXT://myhost:9092
Port 0 picks a free port; the broker prints the address it listens on
("tributary broker listening on HOST:PORT") on stderr once it is ready.

The data directory: log.dirs (default ./tributary-data), e.g.
  tributary broker --override log.dirs=/var/lib/tributary

flags:
  --config FILE          Kafka server.properties file (may also be given as the only argument)
  --override key=value   broker property, applied after --config (repeatable)
  --log-level LEVEL      debug, info, warn or error (default info)
`

// loadBrokerConfig is the built-in defaults, then the properties file (if
// any), then the key=value overrides.
func loadBrokerConfig(path string, overrides []string, logger *slog.Logger) (broker.Config, error) {
	cfg := broker.DefaultConfig()
	cfg.Logger = logger
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, err
		}
		props, err := broker.ParseProperties(f)
		f.Close()
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
		if err := cfg.ApplyProperties(props, logger); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	ov := map[string]string{}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return cfg, fmt.Errorf("--override %q is not key=value", o)
		}
		ov[strings.TrimSpace(k)] = v
	}
	if err := cfg.ApplyProperties(ov, logger); err != nil {
		return cfg, fmt.Errorf("--override: %w", err)
	}
	return cfg, nil
}
