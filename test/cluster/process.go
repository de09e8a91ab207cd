package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a component gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// process is one running component. cmd and done are set only in the Go
// process that started it; a Cluster loaded from its state file knows the
// PID and binary path alone.
type process struct {
	Name string `json:"name"`
	Path string `json:"path"`
	PID  int    `json:"pid"`

	done chan struct{}
}

// startProcess runs bin with args, stdout and stderr appended to logFile, in
// its own process group so that it outlives a CLI that started it and is not
// hit by the terminal's Ctrl-C.
func startProcess(name, bin, logFile string, args []string, stopWithParent bool) (*process, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log for %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := cmd.Start
	if stopWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		start = func() error { return startOnLockedThread(cmd) }
	}
	if err := start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{Name: name, Path: bin, PID: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap it, so a stopped component leaves no zombie
		close(p.done)
	}()
	return p, nil
}

// StartTiedToParent starts cmd so that the kernel SIGKILLs it when this
// process dies, even by SIGKILL or a test timeout: nothing a test starts
// outlives it.
func StartTiedToParent(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return startOnLockedThread(cmd)
}

var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

// startOnLockedThread starts cmd from one OS thread that lives as long as
// this process. The kernel sends Pdeathsig when the *thread* that forked the
// child exits, and the Go runtime may retire an ordinary thread at any time
// (golang/go#27505); a locked thread that never unlocks never goes.
func startOnLockedThread(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: see above
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.err
}

// exited reports whether a process this Go process started has exited.
func (p *process) exited() bool {
	if p.done == nil {
		return !p.alive()
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// alive reports whether p.PID is still p's binary. Comparing the executable
// guards against signalling an unrelated process that reused the PID.
func (p *process) alive() bool {
	if p.PID <= 0 {
		return false
	}
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
		}
	}
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(p.PID), "exe"))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.PID), "stat"))
	if err == nil && isZombie(stat) {
		return false
	}
	return sameBinary(exe, p.Path)
}

// sameBinary: exe (what /proc/<pid>/exe reads) is the binary at path. The
// kernel shows the path with symlinks resolved (a repository under a
// symlinked directory started it by another name), and a binary rebuilt
// while it runs as "<path> (deleted)".
func sameBinary(exe, path string) bool {
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe == path {
		return true
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	return err == nil && exe == filepath.Join(dir, filepath.Base(path))
}

// isZombie parses the state field of /proc/<pid>/stat ("pid (comm) S ...").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// stop sends SIGTERM, waits up to stopGrace, then SIGKILL. Stopping a process
// that is already gone is not an error. It returns only once the process is
// gone for good: a process this Go process started must also be reaped, since
// a zombie still holds its PID (kill(pid, 0) finds it).
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM %s (pid %d): %w", p.Name, p.PID, err)
	}
	if p.waitGone(stopGrace) {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGKILL %s (pid %d): %w", p.Name, p.PID, err)
	}
	if !p.waitGone(5 * time.Second) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return nil
}

// waitGone waits up to d for p to be gone. A process this Go process started
// is gone when its reaper has returned from Wait, never merely when it is a
// zombie; one started by another process (a Cluster loaded from its state
// file) is polled, and a zombie there is its own parent's to reap.
func (p *process) waitGone(d time.Duration) bool {
	if p.done != nil {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-p.done:
			return true
		case <-timer.C:
			return false
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !p.alive()
}
