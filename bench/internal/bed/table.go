package bed

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Row is one line of a bench table.
type Row struct {
	Name    string
	Votes   int64
	Seconds float64 // the rate's denominator: the measured stage's own time
	Versus  string  // ratio to the ceiling or the baseline
	RSSMiB  float64
	Wall    float64 // process start to done
	CPU     float64 // CPU seconds of the process, start to exit
}

// Rate is votes per second.
func (r Row) Rate() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Votes) / r.Seconds
}

// CPUPerVote is the process's CPU microseconds per vote, 0 if unknown.
func (r Row) CPUPerVote() float64 {
	if r.CPU <= 0 || r.Votes == 0 {
		return 0
	}
	return 1e6 * r.CPU / float64(r.Votes)
}

// MedianRow is the run with the median rate (the lower middle one of an
// even number): a ceiling or counter row, or a peer's round.
func MedianRow[R interface{ Rate() float64 }](runs []R) R {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b R) int { return cmp.Compare(a.Rate(), b.Rate()) })
	return s[(len(s)-1)/2]
}

// Median is the median of xs.
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// JoinRatios lists ratios to two decimals.
func JoinRatios(r []float64) string {
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, ", ")
}

// PrintTable writes rows as a Markdown table.
func PrintTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| run | votes | votes/s | ratio | peak RSS | wall | CPU µs/vote |")
	fmt.Fprintln(w, "| --- | ---: | ---: | --- | ---: | ---: | ---: |")
	for _, r := range rows {
		cpu := "-"
		if r.CPU > 0 {
			cpu = fmt.Sprintf("%.2f", r.CPUPerVote())
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.0f MiB | %.2f s | %s |\n", r.Name, r.Votes, Human(r.Rate()), r.Versus, r.RSSMiB, r.Wall, cpu)
	}
}

// Human writes a rate with a k or M.
func Human(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f M", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0f k", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// DirSize is the bytes of the files under dir.
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// PrintMachine writes the line that names the machine a table ran on.
func PrintMachine(w io.Writer) {
	fmt.Fprintf(w, "machine: %s, %d CPUs, %s/%s, %s\n", CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// CPUModel is the processor's model name from /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
