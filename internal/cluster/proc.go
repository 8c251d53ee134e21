package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ProcConfig describes a process for StartProc.
type ProcConfig struct {
	// Name is how logs and errors call it: "temporal", "server-1", "worker-2".
	Name string
	Bin  string
	Args []string
	// Env is its whole environment.
	Env []string
	// LogPath is the file its stdout and stderr are appended to.
	LogPath string
	// Supervise starts it again RestartDelay (default 1 s) after every exit, as a process
	// supervisor would, until Kill or Stop.
	Supervise    bool
	RestartDelay time.Duration
	// MetricsURL and ReadyURL are its /metrics and /readyz ("" for none); Start waits on ReadyURL.
	MetricsURL, ReadyURL string
}

// Proc is one process of the topology (Temporal, a tend server, a tend worker), or of a test
// that starts tend's parts itself (e2e/chaos).
type Proc struct {
	// Name is how logs and errors call it: "temporal", "server-1", "worker-2".
	Name string
	// LogPath is the file its stdout and stderr are appended to.
	LogPath string
	// MetricsURL is its /metrics endpoint ("" for none).
	MetricsURL string
	// ReadyURL answers 200 once it is ready ("" when only a port tells).
	ReadyURL string

	bin          string
	args, env    []string
	supervise    bool
	restartDelay time.Duration

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current process has exited
	stopping bool
	// signalled is set when Signal sent what ended the current process.
	signalled  bool
	starts     int
	unexpected []string // exits nobody caused through Signal, Kill or Stop
	done       chan struct{}
}

// StartProc starts the process (and, when it is supervised, its supervisor).
func StartProc(cfg ProcConfig) (*Proc, error) {
	p := &Proc{Name: cfg.Name, LogPath: cfg.LogPath, MetricsURL: cfg.MetricsURL, ReadyURL: cfg.ReadyURL,
		bin: cfg.Bin, args: cfg.Args, env: cfg.Env, supervise: cfg.Supervise, restartDelay: cfg.RestartDelay}
	if p.restartDelay <= 0 {
		p.restartDelay = time.Second
	}
	return p, p.start()
}

func (p *Proc) start() error {
	p.done = make(chan struct{})
	if err := p.launch(); err != nil {
		close(p.done)
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go p.watch()
	return nil
}

func (p *Proc) launch() error {
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a Ctrl+C reaches the cluster, which then stops its parts in
	// order; Pdeathsig so that a cluster killed with -9 (or a test binary killed by go test's
	// timeout) does not leave them on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(f, "---- supervisor: start %s at %s\n", p.Name, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.signalled = cmd, exited, false
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "---- supervisor: %s exited at %s: %v\n", p.Name, time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		p.mu.Lock()
		if !p.signalled && !p.stopping {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited by itself: %v", p.Name, err))
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// watch starts the process again after every exit while it is supervised and nobody stopped it.
func (p *Proc) watch() {
	defer close(p.done)
	for {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		<-exited
		if !p.supervise {
			return
		}
		time.Sleep(p.restartDelay)
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		for p.launch() != nil {
			time.Sleep(time.Second)
		}
	}
}

// Running reports whether the process is up now.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Starts is how many times the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// UnexpectedExits lists the exits that neither Signal, Kill nor Stop caused.
func (p *Proc) UnexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// Signal sends sig to the running process and waits (up to grace) until it has exited; one that
// outlives the grace period is killed. A supervised process is then started again, as after a
// crash: this is how a test injects one.
func (p *Proc) Signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.signalled = true
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not exit within %s of %s; killed", p.Name, grace, sig)
	}
}

// Kill ends the process with SIGKILL — a crash, no chance to finish anything — and does not
// start it again.
func (p *Proc) Kill() { p.stop(syscall.SIGKILL, 0) }

// Stop ends the process with SIGTERM, waits up to grace for it to finish its work, then kills
// it; it is not started again.
func (p *Proc) Stop(grace time.Duration) { p.stop(syscall.SIGTERM, grace) }

func (p *Proc) stop(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	if p.stopping || p.cmd == nil {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-exited
	<-p.done
}
