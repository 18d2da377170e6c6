package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/votestream/votestream/pkg/vote"
)

// Spark is how to run the jobs in deploy/spark: a Python with pyspark of
// the version deploy/spark/pom.xml pins, and that pom's jars.
type Spark struct {
	Python string // a python3 whose pyspark is Spark's version
	Dir    string // deploy/spark
}

var sparkVersionRE = regexp.MustCompile(`<spark\.version>([^<]+)</spark\.version>`)

// FindSpark looks for the Python of make spark-deps (.cache/spark-venv),
// else SPARK_PYTHON, else python3, and checks its pyspark and the jars.
func FindSpark(ctx context.Context) (Spark, error) {
	root, err := ModuleRoot()
	if err != nil {
		return Spark{}, err
	}
	s := Spark{Python: os.Getenv("SPARK_PYTHON"), Dir: filepath.Join(root, "deploy", "spark")}
	if s.Python == "" {
		s.Python = filepath.Join(root, ".cache", "spark-venv", "bin", "python3")
		if _, err := os.Stat(s.Python); err != nil {
			s.Python = "python3"
		}
	}
	pom, err := os.ReadFile(filepath.Join(s.Dir, "pom.xml"))
	if err != nil {
		return s, err
	}
	want := sparkVersionRE.FindSubmatch(pom)
	if want == nil {
		return s, fmt.Errorf("no spark.version in %s/pom.xml", s.Dir)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.Python, "-c", "import pyspark; print(pyspark.__version__)").CombinedOutput()
	if err != nil {
		return s, fmt.Errorf("%s has no pyspark (run make spark-deps): %v %s", s.Python, err, strings.TrimSpace(string(out)))
	}
	if got := strings.TrimSpace(string(out)); got != string(want[1]) {
		return s, fmt.Errorf("%s has pyspark %s, deploy/spark/pom.xml pins %s: run make spark-deps", s.Python, got, want[1])
	}
	if jars, _ := filepath.Glob(filepath.Join(s.Dir, "lib", "*.jar")); len(jars) == 0 {
		return s, fmt.Errorf("no jars in %s/lib: run make spark-deps", s.Dir)
	}
	return s, nil
}

// Job is the command running one of deploy/spark's jobs with args.
func (s Spark) Job(script string, args ...string) (string, []string) {
	return s.Python, append([]string{filepath.Join(s.Dir, script)}, args...)
}

// Env is what Spark needs in its environment: the loopback interface.
func (Spark) Env() []string { return []string{"SPARK_LOCAL_IP=127.0.0.1"} }

// Cmd is the command running script with args, in a minimal environment.
func (s Spark) Cmd(script string, args ...string) *exec.Cmd {
	py, a := s.Job(script, args...)
	return Command(py, a, s.Env()...)
}

// SparkTotals is what votes_kafka.py writes after each micro-batch (and,
// but for Batch and Votes, what the Kafka Streams peer serves).
type SparkTotals struct {
	Batch    int64            `json:"batch"`
	Records  int64            `json:"records"`
	Unparsed int64            `json:"unparsed"`
	Votes    int64            `json:"votes"`
	Cells    map[string]int64 `json:"cells"`
}

// ReadSparkTotals reads a votes_kafka.py totals file into a tally.
func ReadSparkTotals(path string) (SparkTotals, vote.Tally, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return SparkTotals{}, vote.Tally{}, err
	}
	st, t, err := ParseCellTotals(b)
	if err != nil {
		return st, t, fmt.Errorf("%s: %w", path, err)
	}
	return st, t, nil
}

// ParseCellTotals parses totals keyed by "candidate|state|age group", as
// the Spark and Kafka Streams peers write them; an unknown cell is an
// error.
func ParseCellTotals(b []byte) (SparkTotals, vote.Tally, error) {
	var st SparkTotals
	var t vote.Tally
	if err := json.Unmarshal(b, &st); err != nil {
		return st, t, err
	}
	for k, n := range st.Cells {
		parts := strings.Split(k, "|")
		if len(parts) != 3 {
			return st, t, fmt.Errorf("bad cell %q", k)
		}
		c, ok1 := vote.ParseCandidate([]byte(parts[0]))
		s, ok2 := vote.ParseState([]byte(parts[1]))
		a, ok3 := vote.ParseAgeGroup([]byte(parts[2]))
		if !ok1 || !ok2 || !ok3 {
			return st, t, fmt.Errorf("unknown cell %q", k)
		}
		t[c][s][a] += n
	}
	return st, t, nil
}
