package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tributary/tributary/broker"
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
	configPath := fs.String("config", "", "Kafka server.properties file")
	var overrides stringList
	fs.Var(&overrides, "override", "key=value broker property, applied after --config (repeatable)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
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

	cfg, err := loadBrokerConfig(*configPath, overrides, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tributary broker:", err)
		return 1
	}
	b, err := broker.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tributary broker:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-b.Ready():
			if a := b.HTTPAddr(); a != "" {
				// Before the listening line: whoever waits for that one
				// has seen this one too.
				fmt.Fprintf(os.Stderr, "tributary console on http://%s/\n", a)
			}
			// Tests and scripts wait for this exact line to learn the port.
			fmt.Fprintf(os.Stderr, "tributary broker listening on %s\n", b.Addr())
		case <-ctx.Done():
		}
	}()
	if err := b.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tributary broker:", err)
		return 1
	}
	return 0
}

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
