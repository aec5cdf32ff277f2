package brokertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a `tributary broker` subprocess started by StartProcess.
type Process struct {
	// Pid is the process id.
	Pid      int
	addr     string
	httpAddr string
	cmd      *exec.Cmd

	waitOnce sync.Once
	waitErr  error
	exited   chan struct{}
	// finish stops the process if it still runs (continuing it first,
	// should a failed test have left it paused) and ends its logging
	// into the test.
	finish func()
}

// Addr is host:port the broker listens on.
func (p *Process) Addr() string { return p.addr }

// HTTPAddr is host:port of the broker's console and /metrics, "" when
// an override turned http.listener off.
func (p *Process) HTTPAddr() string { return p.httpAddr }

// Kill sends SIGKILL and waits for the process to die: a crash, with no
// chance to flush.
func (p *Process) Kill() error {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	return nil
}

// Stop sends SIGTERM and waits (up to 30s, then SIGKILL) for a clean
// exit; it returns an error unless the process exited with status 0.
func (p *Process) Stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return errors.New("brokertest: broker did not exit within 30s of SIGTERM")
	}
	return p.waitErr
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// PeakRSS is the process's peak resident set size in bytes: VmHWM from
// /proc/PID/status while it runs, the rusage maximum once it exited.
func (p *Process) PeakRSS() (int64, error) {
	select {
	case <-p.exited:
		if st := p.cmd.ProcessState; st != nil {
			if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
				return ru.Maxrss * 1024, nil // kB on Linux
			}
		}
		return 0, errors.New("brokertest: no rusage for the exited process")
	default:
	}
	return p.procStatus("VmHWM:")
}

// RSS is the process's current resident set size in bytes (VmRSS).
func (p *Process) RSS() (int64, error) { return p.procStatus("VmRSS:") }

func (p *Process) procStatus(field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("brokertest: no %s in /proc status", field)
}

const (
	listeningPrefix = "tributary broker listening on "
	consolePrefix   = "tributary console on http://"
)

// StartProcess builds `tributary` (once per test binary) and runs
// `tributary broker` with log.dirs=dir on 127.0.0.1:0 (and its console
// on another free port), plus overrides
// ("key=value" broker properties). It returns once the broker listens.
// The process is stopped (SIGTERM, then SIGKILL) when the test ends; its
// output goes to t.Log.
func StartProcess(t testing.TB, dir string, overrides ...string) *Process {
	t.Helper()
	return startProcess(t, dir, nil, nil, append([]string{"listeners=PLAINTEXT://127.0.0.1:0"}, overrides...), nil)
}

// StartProcessNoFile is StartProcess with the broker's RLIMIT_NOFILE (soft
// and hard, so the Go runtime cannot raise it) set to nofile, through
// util-linux prlimit(1); the test fails if prlimit is missing.
func StartProcessNoFile(t testing.TB, dir string, nofile int, overrides ...string) *Process {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("brokertest: prlimit(1) (util-linux) is needed to lower RLIMIT_NOFILE: %v", err)
	}
	return startProcess(t, dir, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"}, nil,
		append([]string{"listeners=PLAINTEXT://127.0.0.1:0"}, overrides...), nil)
}

// startProcess runs `tributary broker` with log.dirs=dir and the
// overrides ("env:K=V" entries go to the environment instead), wrapped in
// the wrap command if any; files are handed to the child as fds 3, 4, ...
// (listening sockets, named in TRIBUTARY_LISTEN_FDS).
//
// With track nil the process is stopped by its own t.Cleanup; otherwise
// track receives it (before it is known to serve, so a failed start is
// stopped too) and its owner calls finish: a ProcessCluster stops every
// node at once after the test's clients have closed.
func startProcess(t testing.TB, dir string, wrap []string, files []*os.File, overrides []string, track func(*Process)) *Process {
	t.Helper()
	bin := buildBinary(t)
	args := []string{"broker", "--override", "log.dirs=" + dir, "--override", "http.listener=127.0.0.1:0"}
	var env []string
	for _, o := range overrides {
		if v, ok := strings.CutPrefix(o, "env:"); ok {
			env = append(env, v)
			continue
		}
		args = append(args, "--override", o)
	}
	if len(wrap) > 0 {
		// prlimit execs the broker: the pid stays the broker's.
		args = append(append(wrap[1:], bin), args...)
		bin = wrap[0]
	}
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = files
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("brokertest: start %s: %v", bin, err)
	}
	p := &Process{Pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	addrCh := make(chan string, 1)
	httpCh := make(chan string, 1) // written (once) before addrCh
	// Lines carry the data directory's name (node-2 in a cluster), so
	// interleaved output of several processes says which one spoke.
	name := "broker " + filepath.Base(dir)
	var outMu sync.Mutex
	testDone := false
	logLine := func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		if !testDone {
			t.Log(name+":", line)
		}
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, consolePrefix); ok {
				select {
				case httpCh <- strings.TrimSuffix(strings.TrimSpace(a), "/"):
				default:
				}
			}
			if a, ok := strings.CutPrefix(line, listeningPrefix); ok {
				select {
				case addrCh <- strings.TrimSpace(a):
				default:
				}
			}
			logLine(line)
		}
	}()
	go func() {
		<-readDone // the pipe must be drained before Wait
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	p.finish = func() {
		select {
		case <-p.exited:
		default:
			p.Resume()
			if err := p.Stop(); err != nil {
				t.Errorf("brokertest: stopping broker process: %v", err)
			}
		}
		outMu.Lock()
		testDone = true
		outMu.Unlock()
	}
	if track != nil {
		track(p)
	} else {
		t.Cleanup(p.finish)
	}
	select {
	case p.addr = <-addrCh:
		select {
		case p.httpAddr = <-httpCh:
		default:
		}
	case <-p.exited:
		t.Fatalf("brokertest: broker process exited before listening: %v", p.waitErr)
	case <-time.After(60 * time.Second):
		t.Fatalf("brokertest: broker process did not listen within 60s")
	}
	return p
}

// Pause stops the process with SIGSTOP: to the rest of the cluster it is
// a node cut off the network (its sessions expire, its partitions move),
// and when Resume continues it, it finds itself behind, as a partitioned
// broker does once the network heals.
func (p *Process) Pause() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process.
func (p *Process) Resume() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

var build struct {
	sync.Mutex
	path string
}

// buildBinary builds cmd/tributary into a directory private to this
// test process; directories left by earlier, dead test processes are
// removed so that at most one stale binary can ever exist.
func buildBinary(t testing.TB) string {
	t.Helper()
	build.Lock()
	defer build.Unlock()
	if build.path != "" {
		if _, err := os.Stat(build.path); err == nil {
			return build.path
		}
	}
	root := filepath.Join(os.TempDir(), "tributary-brokertest")
	os.MkdirAll(root, 0o755)
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if syscall.Kill(pid, 0) != nil {
				os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	dir := filepath.Join(root, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tributary")
	var out bytes.Buffer
	cmd := exec.Command("go", "build", "-o", bin, "github.com/tributary/tributary/cmd/tributary")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("brokertest: go build cmd/tributary: %v\n%s", err, out.String())
	}
	build.path = bin
	return bin
}
