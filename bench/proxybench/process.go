package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process the harness started. Its stdout and stderr go
// to a file (never a pipe the harness would have to drain while it
// measures).
type proc struct {
	name string
	cmd  *exec.Cmd
	Addr string // host:port it listens on
	Log  string // its output file
	done chan struct{}
	err  error
}

// startProc starts argv with its output in logPath and waits (at most
// timeout) until ready finds the listening address in that output.
func startProc(name string, argv, env []string, logPath string, ready func(line []byte) (addr string, ok bool), timeout time.Duration) (*proc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	out.Close()
	p := &proc{name: name, cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(logPath); err == nil {
			for line := range bytes.SplitSeq(b, []byte("\n")) {
				if addr, ok := ready(line); ok {
					p.Addr = addr
					return p, nil
				}
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before listening (%v): %s", name, p.err, tail(logPath, 2000))
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.Stop()
	return nil, fmt.Errorf("%s not listening after %v: %s", name, timeout, tail(logPath, 2000))
}

// Stop asks the process to stop (SIGTERM), waits for it (at most 40 s,
// modproxy's graceful shutdown is bounded by 30 s) and kills it after
// that. It only signals the process it started.
func (p *proc) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		logf("%s did not stop after SIGTERM; killing pid %d", p.name, p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) Pid() int { return p.cmd.Process.Pid }

func (p *proc) URL() string { return "http://" + p.Addr }

// memStatus reads VmRSS and VmHWM (peak RSS) in KiB from /proc/PID/status.
func memStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	if hwm == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return rss, hwm, nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// modproxyRunner starts modproxy processes: one binary, one upstream, and
// the extra flags of a variant (appended last, so they override the
// defaults, e.g. "--sumdb NAME" for checksum verification). Every process
// gets its admin listener on a free loopback port, so that it never
// collides with another modproxy on this machine.
type modproxyRunner struct {
	bin      string
	upstream string // the local upstream; empty when the harness has none
	tmp      string // where logs go
	sumdb    string // replaces {sumdb} in a variant's flags
	seq      int
	env      []string // extra MODPROXY_* variables (-modproxy-env)
}

// variant is a named modproxy configuration measured in the fill phases.
type variant struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
}

// baseArgs are the flags every benchmarked modproxy gets.
func (m *modproxyRunner) baseArgs(cacheDir string) []string {
	return []string{"serve",
		"--listen", "127.0.0.1:0",
		"--log-format", "json",
		"--cache-dir", cacheDir,
		"--upstream", m.upstream,
		"--sumdb", "off",
	}
}

func (m *modproxyRunner) start(cacheDir string, v variant, extraEnv ...string) (*proc, error) {
	if m.upstream == "" {
		return nil, errors.New("modproxy: no local upstream to point it at")
	}
	argv := m.baseArgs(cacheDir)
	for _, a := range v.Args {
		argv = append(argv, strings.ReplaceAll(a, "{sumdb}", m.sumdb))
	}
	return m.exec(argv, extraEnv...)
}

// startDefaults starts modproxy with its own defaults for the upstream and
// the checksum database (go env GOPROXY and go env GOSUMDB, read by
// modproxy itself): the real upstream, as a new user would run it.
func (m *modproxyRunner) startDefaults(cacheDir string) (*proc, error) {
	return m.exec([]string{"serve",
		"--listen", "127.0.0.1:0",
		"--log-format", "json",
		"--cache-dir", cacheDir,
	})
}

// exec runs modproxy with args, the runner's environment and extraEnv
// (last: it wins).
func (m *modproxyRunner) exec(args []string, extraEnv ...string) (*proc, error) {
	m.seq++
	logPath := filepath.Join(m.tmp, fmt.Sprintf("modproxy-%02d.log", m.seq))
	env := append(append(append(cleanEnv(), "MODPROXY_ADMIN_LISTEN=127.0.0.1:0"), m.env...), extraEnv...)
	return startProc("modproxy", append([]string{m.bin}, args...), env, logPath, modproxyReady, 30*time.Second)
}

// cleanEnv is the environment without MODPROXY_* variables, so only the
// flags configure the measured server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MODPROXY_") {
			env = append(env, kv)
		}
	}
	return env
}

// modproxyReady finds {"msg":"listening","addr":"127.0.0.1:PORT"}.
func modproxyReady(line []byte) (string, bool) {
	if !bytes.Contains(line, []byte(`"listening"`)) {
		return "", false
	}
	var m struct{ Msg, Addr string }
	if json.Unmarshal(line, &m) != nil || m.Msg != "listening" || m.Addr == "" {
		return "", false
	}
	return m.Addr, true
}

// accessLog counts the access-log lines of a modproxy log from an offset.
type accessLog struct {
	Requests int            `json:"requests"`
	Cache    map[string]int `json:"cache"`  // hit, miss, coalesced, stale, negative
	Status   map[string]int `json:"status"` // by HTTP status
	Errors   []string       `json:"errors,omitempty"`
}

// readAccessLog reads the request lines of a log and counts them by
// round: round i holds, for every path, its (i+1)-th request. modproxy
// buffers its log, so read it after the process has stopped; rounds (cold,
// then warm) do not depend on when lines were written.
func readAccessLog(path string) ([]accessLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rounds []accessLog
	seen := map[string]int{}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		var m struct {
			Level  string
			Msg    string
			Path   string
			Status int
			Cache  string
			Err    string
		}
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		i := 0
		if m.Msg == "request" {
			i = seen[m.Path]
			seen[m.Path]++
		}
		for len(rounds) <= i {
			rounds = append(rounds, accessLog{Cache: map[string]int{}, Status: map[string]int{}})
		}
		al := &rounds[i]
		switch {
		case m.Msg == "request":
			al.Requests++
			al.Status[strconv.Itoa(m.Status)]++
			if m.Cache != "" {
				al.Cache[m.Cache]++
			}
		case m.Level == "ERROR" || m.Level == "WARN":
			if len(al.Errors) < 5 {
				al.Errors = append(al.Errors, m.Level+" "+m.Msg+": "+m.Err)
			}
		}
	}
	return rounds, nil
}

// sumRounds adds up the rounds of an access log (the first five errors).
func sumRounds(rounds []accessLog) accessLog {
	al := accessLog{Cache: map[string]int{}, Status: map[string]int{}}
	for _, r := range rounds {
		al.Requests += r.Requests
		for k, v := range r.Cache {
			al.Cache[k] += v
		}
		for k, v := range r.Status {
			al.Status[k] += v
		}
		for _, e := range r.Errors {
			if len(al.Errors) < 5 {
				al.Errors = append(al.Errors, e)
			}
		}
	}
	return al
}

// round returns rounds[i], or an empty accessLog.
func round(rounds []accessLog, i int) accessLog {
	if i < len(rounds) {
		return rounds[i]
	}
	return accessLog{Cache: map[string]int{}, Status: map[string]int{}}
}

// freePort returns a loopback port that was free a moment ago (for servers
// that must be told their port, like nginx).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, addr string, timeout time.Duration, done <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not accepting connections after %v", addr, timeout)
}
