package promserver

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Target is one query of a Grafana dashboard panel.
type Target struct {
	Panel string // the panel's title
	RefID string // A, B, ... within the panel
	Raw   string // the expression as the dashboard stores it
	Expr  string // Raw with Grafana's variables replaced by Vars
}

// Vars are the values that stand for Grafana's built-in interval variables
// when a dashboard query is sent to Prometheus directly. They suit a test
// Prometheus scraping every second: a rate over 1m has many samples after a
// few seconds.
var Vars = map[string]string{
	"$__rate_interval":   "1m",
	"${__rate_interval}": "1m",
	"$__interval":        "15s",
	"${__interval}":      "15s",
	"$__interval_ms":     "15000",
	"${__interval_ms}":   "15000",
	"$__range":           "5m",
	"${__range}":         "5m",
	"$__range_s":         "300",
	"${__range_s}":       "300",
	"$__range_ms":        "300000",
	"${__range_ms}":      "300000",
}

// DashboardTargets returns every visible query of the Grafana dashboard at
// path, panels inside rows included, in dashboard order. A query that still
// holds a variable after substitution is an error: Prometheus could not run
// it, and neither can a test.
func DashboardTargets(path string) ([]Target, error) {
	return DashboardTargetsIn(path, Namespace)
}

// DashboardTargetsIn is DashboardTargets with the dashboard's deployment
// variable, $namespace, set to namespace.
func DashboardTargetsIn(path, namespace string) ([]Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	var out []Target
	var walk func([]panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Hide || strings.TrimSpace(t.Expr) == "" {
					continue
				}
				expr := SubstituteIn(t.Expr, namespace)
				if strings.Contains(expr, "$") {
					return fmt.Errorf("panel %q query %s: unknown variable left in %q", p.Title, t.RefID, expr)
				}
				out = append(out, Target{Panel: p.Title, RefID: t.RefID, Raw: t.Expr, Expr: expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(dash.Panels); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dashboard %s has no queries", path)
	}
	return out, nil
}

// Substitute replaces Grafana's variables in expr by their values in Vars,
// and the dashboard's $namespace by Namespace.
func Substitute(expr string) string { return SubstituteIn(expr, Namespace) }

// SubstituteIn is Substitute with $namespace set to namespace.
func SubstituteIn(expr, namespace string) string {
	vars := map[string]string{"$namespace": namespace, "${namespace}": namespace}
	for k, v := range Vars {
		vars[k] = v
	}
	// Longest names first, so $__range_s is not read as $__range + "_s".
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, k := range names {
		expr = strings.ReplaceAll(expr, k, vars[k])
	}
	return expr
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a row's panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
		Hide  bool   `json:"hide"`
	} `json:"targets"`
}
