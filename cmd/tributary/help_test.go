package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelpGoesToStdout: help that was asked for (help, -h, --help, at
// every level, and `help COMMAND`) prints to stdout and exits 0, so it
// can be paged or grepped; a missing command is a usage error on stderr.
// The bug: all of it went to stderr.
func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"--help"},
		{"topic", "-h"}, {"topic", "help"}, {"help", "topic"},
		{"topic", "create", "-h"}, {"topic", "help", "create"},
		{"consume", "-h"}, {"help", "consume"}, {"produce", "--help"},
		{"broker", "-h"}, {"help", "broker"},
		{"version", "-h"}, {"completion", "-h"},
	} {
		r := cli(t, "", "", args...)
		assert.Equal(t, 0, r.code, "%q", args)
		assert.Contains(t, r.stdout, "usage: tributary", "%q", args)
		assert.Empty(t, r.stderr, "%q", args)
	}
	for _, args := range [][]string{{}, {"topic"}, {"frobnicate"}} {
		r := cli(t, "", "", args...)
		assert.Equal(t, 2, r.code, "%q", args)
		assert.Empty(t, r.stdout, "%q", args)
		assert.Contains(t, r.stderr, "usage: tributary", "%q", args)
	}
}

// TestBrokerHelpSaysPortAndDataDir: `tributary broker -h` tells how to
// pick the port and the data directory, and the way it tells works.
func TestBrokerHelpSaysPortAndDataDir(t *testing.T) {
	r := cli(t, "", "", "broker", "-h")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "--override listeners=PLAINTEXT://127.0.0.1:9093")
	assert.Contains(t, r.stdout, "--override log.dirs=")
	assert.Contains(t, r.stdout, "default ./tributary-data")

	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(binary, "broker", "--override", "listeners=PLAINTEXT://127.0.0.1:0", "--override", "log.dirs="+dir)
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	pw.Close()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	addr := make(chan string, 1)
	all := make(chan string, 1) // everything it printed, once it exits
	go func() {
		buf := make([]byte, 4096)
		var seen strings.Builder
		found := false
		for {
			n, err := pr.Read(buf)
			seen.Write(buf[:n])
			for _, l := range strings.Split(seen.String(), "\n") {
				if a, ok := strings.CutPrefix(l, "tributary broker listening on "); ok && !found {
					found = true
					addr <- a
				}
			}
			if err != nil {
				if !found {
					close(addr)
				}
				all <- seen.String()
				return
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("the broker did not say where it listens")
	}
	require.NotEmpty(t, a)
	assert.NotEqual(t, "127.0.0.1:0", a, "port 0 picks a free port")
	ok(t, a, "", "topic", "create", "here")
	assert.DirExists(t, filepath.Join(dir, "here-0"), "log.dirs holds the data")

	// The listen address is said once, not by a log line and again by
	// the line scripts wait for.
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case out := <-all:
		assert.Equal(t, 1, strings.Count(out, a), "the address in:\n%s", out)
	case <-time.After(30 * time.Second):
		t.Fatal("the broker did not exit on SIGINT")
	}
}

// TestVersion: `tributary version` (and --version) print one line naming
// the binary and the Go version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := ok(t, "", "", args...)
		assert.Regexp(t, `^tributary \S+.* go1\.\d+`, out)
		assert.Equal(t, 1, strings.Count(out, "\n"))
	}
	r := cli(t, "", "", "version", "extra")
	assert.Equal(t, 2, r.code)
}

// TestCompletion: each shell's script parses in that shell and completes
// commands, subcommands and flags from the command table.
func TestCompletion(t *testing.T) {
	bash := ok(t, "", "", "completion", "bash")
	complete := func(words ...string) string {
		t.Helper()
		script := bash + fmt.Sprintf("\nCOMP_WORDS=(%s); COMP_CWORD=%d; _tributary; echo \"${COMPREPLY[*]}\"\n",
			quoteWords(words), len(words)-1)
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "topic", complete("tributary", "to"))
	assert.Equal(t, "completion consume", complete("tributary", "co"))
	assert.Equal(t, "create", complete("tributary", "topic", "cr"))
	assert.Equal(t, "--partitions", complete("tributary", "topic", "create", "x", "--pa"))
	assert.Equal(t, "--end", complete("tributary", "consume", "t", "--e"))
	assert.Equal(t, "zsh", complete("tributary", "completion", "z"))
	assert.Equal(t, "--log-level", complete("tributary", "broker", "--log"))

	zsh := ok(t, "", "", "completion", "zsh")
	assert.True(t, strings.HasPrefix(zsh, "#compdef tributary\n"))
	fish := ok(t, "", "", "completion", "fish")
	assert.Contains(t, fish, "complete -c tributary -n '__fish_seen_subcommand_from consume' -s e -l end -r")
	for shell, script := range map[string]string{"zsh": zsh, "fish": fish} {
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("%s is not installed: its script is checked by content only", shell)
			continue
		}
		f := filepath.Join(t.TempDir(), "tributary."+shell)
		require.NoError(t, os.WriteFile(f, []byte(script), 0o644))
		out, err := exec.Command(path, "-n", f).CombinedOutput()
		require.NoError(t, err, "%s -n: %s", shell, out)
		if shell == "fish" {
			out, err := exec.Command(path, "-c", "source "+f+"; complete -C'tributary topic cr'").CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "create\tcreate topics")
		}
	}

	r := cli(t, "", "", "completion", "powershell")
	assert.Equal(t, 2, r.code)
}

func quoteWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}
