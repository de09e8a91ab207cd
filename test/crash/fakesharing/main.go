// Command fakesharing stands in for nvidia-cuda-mps-control and nvidia-smi
// in the crash test, keeping what they would change on disk so that a
// plugin killed mid-prepare leaks what real GPUs would keep. It acts as the
// command it is invoked as (the test links it under both names):
//
//	nvidia-cuda-mps-control -d           marks the daemon of $CUDA_MPS_PIPE_DIRECTORY running;
//	                                     fails if one runs there already
//	nvidia-cuda-mps-control -f           the same, then runs until the mark is removed
//	                                     (quit) or SIGTERM
//	nvidia-cuda-mps-control <<< quit     removes the mark; fails if no daemon runs
//	nvidia-cuda-mps-control <<< get_server_list
//	                                     fails if no daemon runs
//	nvidia-cuda-mps-control <<< set_default_active_thread_percentage N
//	nvidia-cuda-mps-control <<< set_default_device_pinned_mem_limit 0 NM
//	                                     records the limit in $CUDA_MPS_PIPE_DIRECTORY/fake-limits
//	nvidia-smi compute-policy -i UUID --set-timeslice=N
//	                                     writes N to $TIERRA_FAKE_NVIDIA_SMI_DIR/UUID
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DaemonMarker is the file in the pipe directory that says a daemon runs.
const DaemonMarker = "fake-mps-daemon"

// LimitsFile, in the pipe directory, records the limits the daemon was
// given, one "command args" line each.
const LimitsFile = "fake-limits"

// SMIDirEnv names the directory of the time-slice records.
const SMIDirEnv = "TIERRA_FAKE_NVIDIA_SMI_DIR"

func main() {
	if err := run(filepath.Base(os.Args[0]), os.Args[1:], os.Getenv, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(name string, args []string, getenv func(string) string, stdin io.Reader) error {
	switch {
	case strings.Contains(name, "mps-control"):
		return mpsControl(args, getenv, stdin)
	case strings.Contains(name, "nvidia-smi"):
		return nvidiaSMI(args, getenv)
	}
	return fmt.Errorf("fakesharing: invoked as %q: want nvidia-cuda-mps-control or nvidia-smi", name)
}

func mpsControl(args []string, getenv func(string) string, stdin io.Reader) error {
	pipe := getenv("CUDA_MPS_PIPE_DIRECTORY")
	if pipe == "" {
		return errors.New("CUDA_MPS_PIPE_DIRECTORY is not set")
	}
	marker := filepath.Join(pipe, DaemonMarker)
	if len(args) == 1 && (args[0] == "-d" || args[0] == "-f") {
		if err := markRunning(marker, getenv); err != nil || args[0] == "-d" {
			return err
		}
		return foreground(marker)
	}
	if len(args) != 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		if err := command(pipe, marker, strings.Fields(sc.Text())); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read commands: %w", err)
	}
	return nil
}

func markRunning(marker string, getenv func(string) string) error {
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("an instance of this daemon is already running in %s", filepath.Dir(marker))
	}
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	_, err = fmt.Fprintln(f, getenv("CUDA_VISIBLE_DEVICES"))
	return errors.Join(err, f.Close())
}

// foreground runs until the marker is removed (quit) or SIGTERM.
func foreground(marker string) error {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-term:
			return os.Remove(marker)
		case <-tick.C:
			if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
				return nil
			}
		}
	}
}

// command runs one control command against the daemon of the pipe dir.
func command(pipe, marker string, words []string) error {
	if len(words) == 0 {
		return nil
	}
	if _, err := os.Stat(marker); err != nil {
		return fmt.Errorf("cannot find MPS control daemon process in %s: %w", pipe, err)
	}
	switch words[0] {
	case "quit":
		return os.Remove(marker)
	case "get_server_list":
		return nil
	case "set_default_active_thread_percentage", "set_default_device_pinned_mem_limit":
		f, err := os.OpenFile(filepath.Join(pipe, LimitsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("record limit: %w", err)
		}
		_, err = fmt.Fprintln(f, strings.Join(words, " "))
		return errors.Join(err, f.Close())
	}
	return fmt.Errorf("unknown command %q", words[0])
}

func nvidiaSMI(args []string, getenv func(string) string) error {
	dir := getenv(SMIDirEnv)
	if dir == "" {
		return fmt.Errorf("%s is not set", SMIDirEnv)
	}
	if len(args) != 4 || args[0] != "compute-policy" || args[1] != "-i" || !strings.HasPrefix(args[3], "--set-timeslice=") {
		return fmt.Errorf("want compute-policy -i UUID --set-timeslice=N, got %q", args)
	}
	slice := strings.TrimPrefix(args[3], "--set-timeslice=")
	if len(slice) != 1 || slice[0] < '0' || slice[0] > '3' {
		return fmt.Errorf("--set-timeslice=%s: want 0-3", slice)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("time-slice records: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, args[2]), []byte(slice), 0o644); err != nil {
		return fmt.Errorf("set time-slice of %s: %w", args[2], err)
	}
	return nil
}
