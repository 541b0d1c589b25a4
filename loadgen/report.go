package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryMB  int64  `json:"memory_mb"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// DescribeMachine reads /proc/cpuinfo and /proc/meminfo.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemoryMB = kb / 1024
				}
			}
		}
	}
	return m
}

// Report is one `gsdctl bench` run: its results and where they came from.
type Report struct {
	Started time.Time `json:"started"`
	Command string    `json:"command"`
	Cluster string    `json:"cluster"`
	Machine Machine   `json:"machine"`
	Results []*Result `json:"results"`
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// keyFigures lists a result's headline figures in a stable order.
func keyFigures(r *Result) []string {
	var out []string
	keys := make([]string, 0, len(r.Figures))
	for k := range r.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.Figures[k]
		s := f1(v)
		if strings.Contains(k, "ratio") {
			s = f2(v)
		}
		out = append(out, k+"="+s)
	}
	return out
}

// WriteTable prints the results as aligned text tables.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tlevel\tevents/s\tapplied\tconflicts\tfailed\tp50 ms\tp99 ms\tp99.9 ms\tprop p99 ms\tchecks")
	for _, r := range results {
		ac := r.Latency["action_commit"]
		prop := "-"
		if s, ok := r.Latency["propagation"]; ok {
			prop = f1(s.P99)
		}
		checks := "ok"
		if !r.OK() {
			checks = "FAILED"
		}
		if len(r.Checks) == 0 {
			checks = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Level, r.Figures["events_per_s"],
			r.Counts["applied"], r.Counts["conflicts"], r.Counts["failed"], f2(ac.P50), f2(ac.P99), f2(ac.P999), prop, checks)
	}
	tw.Flush()
	for _, r := range results {
		fmt.Fprintf(w, "\n%s:\n", r.Scenario)
		fmt.Fprintf(w, "  %s\n", strings.Join(keyFigures(r), "  "))
		for _, line := range StepLines(r) {
			fmt.Fprintf(w, "  %s\n", line)
		}
		if udp := udpCountsOf(r); len(udp) > 0 {
			fmt.Fprintf(w, "  %s\n", strings.Join(udp, "  "))
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  latency\tcount\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms")
		for _, k := range r.LatencyKeys() {
			s := r.Latency[k]
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\n", k, s.Count, f2(s.P50), f2(s.P90), f2(s.P99), f2(s.P999), f2(s.Max))
		}
		for _, ph := range r.Phases {
			s := ph.Latency["action_commit"]
			fmt.Fprintf(tw, "  action_commit [%s]\t%d\t%s\t%s\t%s\t%s\t%s\n", ph.Scenario, s.Count, f2(s.P50), f2(s.P90), f2(s.P99), f2(s.P999), f2(s.Max))
		}
		tw.Flush()
		for _, p := range r.Procs {
			fmt.Fprintf(w, "  process %-8s pid %-7d cpu %5.1f%% (peak %5.1f%%)  rss %6.1f MB (peak %6.1f MB)\n",
				p.Name, p.PID, p.CPUPercent, p.PeakCPU, p.RSSMB, p.PeakRSSMB)
		}
		for _, c := range r.Checks {
			v := "ok"
			if !c.OK {
				v = "FAILED"
			}
			fmt.Fprintf(w, "  check %-45s %s: %s\n", c.Name, v, c.Detail)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}

// SeriesOf returns a result's latency distributions for a plot.
func SeriesOf(r *Result) []Series {
	var out []Series
	for _, k := range r.LatencyKeys() {
		if pts := r.Latency[k].Points; len(pts) > 0 {
			out = append(out, Series{Name: k, Points: pts})
		}
	}
	for _, ph := range r.Phases {
		if s, ok := ph.Latency["action_commit"]; ok && len(s.Points) > 0 {
			out = append(out, Series{Name: "action_commit [" + ph.Scenario + "]", Points: s.Points})
		}
	}
	return out
}

// udpCountsOf lists a result's UDP lane counts (udp_*) in a stable order.
func udpCountsOf(r *Result) []string {
	var out []string
	for k, v := range r.Counts {
		if strings.HasPrefix(k, "udp_") {
			out = append(out, k+"="+strconv.FormatInt(v, 10))
		}
	}
	sort.Strings(out)
	return out
}
