package localcluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one child process: its output is appended to a log file, it runs
// in its own process group (a signal reaches its children too) and, on
// Linux, dies with the thread that started it. The local cluster and the
// fault-injection suite both start gsd nodes through it.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu     sync.Mutex
	paused bool
}

// StartProc starts bin with args and env appended to this process's
// environment; stdout and stderr are appended to logPath, after banner
// (when not empty) on a line of its own.
func StartProc(bin string, args, env []string, logPath, banner string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if banner != "" {
		fmt.Fprintln(logf, banner)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Running reports whether the process is alive (a paused one is).
func (p *Proc) Running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Paused reports whether the process was SIGSTOPped and not continued.
func (p *Proc) Paused() bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// PID returns the process id (0 for no process).
func (p *Proc) PID() int {
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitExit waits up to d for the process to exit and reports whether it did.
func (p *Proc) WaitExit(d time.Duration) bool {
	if p == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Signal sends sig to the process group. After SIGKILL it waits until the
// process is gone; after SIGTERM it waits up to grace, then SIGKILLs and
// waits. SIGSTOP and SIGCONT set what Paused reports.
func (p *Proc) Signal(sig syscall.Signal, grace time.Duration) error {
	if !p.Running() {
		return fmt.Errorf("process is not running")
	}
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil {
		return err
	}
	switch sig {
	case syscall.SIGKILL:
		<-p.done
	case syscall.SIGTERM:
		if !p.WaitExit(grace) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.done
		}
	case syscall.SIGSTOP, syscall.SIGCONT:
		p.mu.Lock()
		p.paused = sig == syscall.SIGSTOP
		p.mu.Unlock()
	}
	return nil
}

// WaitReady polls http://addr/readyz until it answers 200, the process
// exits (an error naming logPath), ctx ends or limit passes.
func WaitReady(ctx context.Context, p *Proc, addr, logPath string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if !p.Running() {
			return fmt.Errorf("exited before it was ready; see %s", logPath)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w; see %s", limit, ctx.Err(), logPath)
		case <-t.C:
		}
	}
}
