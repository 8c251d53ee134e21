package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one process of the topology (Temporal, a tend server, a tend worker). When the
// cluster supervises, a Proc that exits for any reason is started again a moment later, as
// systemd or Kubernetes would; Kill ends it for good.
type Proc struct {
	// Name is how logs and errors call it: "temporal", "server-1", "worker-2".
	Name string
	// LogPath is the file its stdout and stderr are appended to.
	LogPath string
	// MetricsURL is its /metrics endpoint ("" for none).
	MetricsURL string
	// ReadyURL answers 200 once it is ready ("" when only a port tells).
	ReadyURL string

	bin       string
	args, env []string
	supervise bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping bool
	starts   int
	done     chan struct{}
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
	// order; Pdeathsig so that a cluster killed with -9 does not leave them on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(f, "---- cluster: start %s at %s\n", p.Name, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "---- cluster: %s exited at %s: %v\n", p.Name, time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		close(exited)
	}()
	return nil
}

// watch restarts the process after every exit while the cluster supervises and nobody stopped it.
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
		time.Sleep(time.Second)
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

// PID is the running process's id (0 when none has started).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
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
