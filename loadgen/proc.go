package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proc names a process whose CPU and memory a run samples.
type Proc struct {
	Name string
	PID  func() int // current pid (0 when not running); may change on restart
}

// ProcStat is what a run saw of one process.
type ProcStat struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUPercent float64 `json:"cpu_percent"` // mean, of one core, over the sampled time
	PeakCPU    float64 `json:"peak_cpu_percent"`
	RSSMB      float64 `json:"rss_mb"` // last sample
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Samples    int     `json:"samples"`
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// readProc returns a process's user+system CPU time and resident set size
// from /proc/PID/stat and /proc/PID/status.
func readProc(pid int) (cpu time.Duration, rssKB int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces: split after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// After ')': state is f[0], so utime (field 14) is f[11], stime f[12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad cpu times in /proc/%d/stat", pid)
	}
	cpu = time.Duration(ut+st) * time.Second / clockTicks
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				rssKB, _ = strconv.ParseInt(fs[0], 10, 64)
			}
		}
	}
	return cpu, rssKB, nil
}

// ProcSampler samples processes once per interval until stopped.
type ProcSampler struct {
	procs []Proc
	every time.Duration

	mu    sync.Mutex
	stats []ProcStat
	last  []procSample
	first []procSample
	done  chan struct{}
}

type procSample struct {
	pid int
	at  time.Time
	cpu time.Duration
}

// NewProcSampler returns a sampler of procs.
func NewProcSampler(procs []Proc, every time.Duration) *ProcSampler {
	s := &ProcSampler{procs: procs, every: every, done: make(chan struct{})}
	s.stats = make([]ProcStat, len(procs))
	s.last = make([]procSample, len(procs))
	s.first = make([]procSample, len(procs))
	for i, p := range procs {
		s.stats[i].Name = p.Name
	}
	return s
}

// Run samples until ctx ends.
func (s *ProcSampler) Run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-ctx.Done():
			s.sample()
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *ProcSampler) sample() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.procs {
		pid := p.PID()
		if pid <= 0 {
			continue
		}
		cpu, rss, err := readProc(pid)
		if err != nil {
			continue
		}
		st := &s.stats[i]
		st.PID = pid
		st.Samples++
		st.RSSMB = float64(rss) / 1024
		st.PeakRSSMB = max(st.PeakRSSMB, st.RSSMB)
		l := s.last[i]
		if l.pid == pid && now.After(l.at) {
			pct := 100 * float64(cpu-l.cpu) / float64(now.Sub(l.at))
			st.PeakCPU = max(st.PeakCPU, pct)
		}
		if s.first[i].pid != pid {
			// A restarted process starts a new mean.
			s.first[i] = procSample{pid: pid, at: now, cpu: cpu}
		}
		if f := s.first[i]; now.After(f.at) {
			st.CPUPercent = 100 * float64(cpu-f.cpu) / float64(now.Sub(f.at))
		}
		s.last[i] = procSample{pid: pid, at: now, cpu: cpu}
	}
}

// Stats returns the figures so far (after Run returned: the final ones).
func (s *ProcSampler) Stats() []ProcStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ProcStat(nil), s.stats...)
}

// Wait waits for Run to return.
func (s *ProcSampler) Wait() { <-s.done }

// Self is the load generator's own process.
func Self() Proc {
	pid := os.Getpid()
	return Proc{Name: "loadgen", PID: func() int { return pid }}
}
