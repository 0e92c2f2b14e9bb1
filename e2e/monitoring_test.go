package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/infra/testredis"
)

// The operations files shipped under infra/monitoring.
const (
	alertsFile    = "../infra/monitoring/alerts.yml"
	dashboardFile = "../infra/monitoring/dashboard.json"
)

// TestPrometheusMonitoring runs a real Prometheus (Debian's prometheus
// package) scraping a connector and a worker while clients send, with the
// shipped alert rules: promtool accepts the rules; Prometheus loads and
// evaluates every one without error; every alert expression runs against
// the live data, and every metric it names has series (an alert is empty
// by design while all is well); every dashboard panel's query runs and
// returns series; and the p99 of the delivered hop has a value.
func TestPrometheusMonitoring(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	promBin, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		t.Fatal("prometheus is not installed: run `go tool task test` (it installs it), or `apt-get install -y --no-install-recommends prometheus`")
	}
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}

	d := deploy(t, 1, 1, false)
	tr := newTraffic(t, []string{d.connectors[0].URL()}, 5, 2)
	done := make(chan struct{})
	go func() { defer close(done); tr.send(300, 100*time.Millisecond) }()
	t.Cleanup(func() { <-done })

	prom := startPrometheus(t, promBin, rules, map[string]string{
		"roomstream-connector": strings.TrimPrefix(d.connectors[0].AdminURL(), "http://"),
		"roomstream-worker":    strings.TrimPrefix(d.workers[0].URL(), "http://"),
	})
	// Both targets up, and enough scrapes for the rates of the rules and
	// panels (windows of a minute and more need two samples).
	testkit.WaitUntil(t, "both targets scraped", time.Minute, func() bool {
		s, err := prom.query(`sum(up{job=~"roomstream.*"})`)
		return err == nil && len(s) == 1 && s[0].value == 2
	})
	testkit.WaitUntil(t, "the delivered hop scraped twice", time.Minute, func() bool {
		s, err := prom.query(`count_over_time(roomstream_event_latency_seconds_count{hop="delivered"}[1m]) >= 3`)
		return err == nil && len(s) > 0
	})

	// Every rule loaded, evaluated without error.
	loaded := prom.rules(t)
	if len(loaded) == 0 {
		t.Fatal("Prometheus loaded no rule")
	}
	metricName := regexp.MustCompile(`\b(roomstream_[a-z_]+|up)\b`)
	for _, r := range loaded {
		if r.Health == "err" {
			t.Errorf("rule %s: %s", r.Name, r.LastError)
		}
		series, err := prom.query(r.Query)
		if err != nil {
			t.Errorf("alert %s: %v", r.Name, err)
			continue
		}
		var names []string
		for _, m := range metricName.FindAllString(r.Query, -1) {
			if !slices.Contains(names, m) {
				names = append(names, m)
			}
		}
		for _, name := range names {
			if s, err := prom.query(name); err != nil || len(s) == 0 {
				t.Errorf("alert %s: %s has no series (%v)", r.Name, name, err)
			}
		}
		t.Logf("alert %-34s %d series now (firing or pending when not 0); its metrics %v have series", r.Name, len(series), names)
	}

	// Every panel of the dashboard returns series.
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	queries := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			queries++
			s, err := prom.query(target.Expr)
			if err != nil || len(s) == 0 {
				t.Errorf("panel %q: %s: %d series, %v", p.Title, target.Expr, len(s), err)
			}
		}
	}
	t.Logf("%d panels, %d queries, each returned series", len(dash.Panels), queries)
	if queries == 0 {
		t.Error("the dashboard has no query")
	}

	for _, hop := range []string{"queued", "applied", "delivered"} {
		s, err := prom.query(`histogram_quantile(0.99, sum by (le) (rate(roomstream_event_latency_seconds_bucket{hop="` + hop + `"}[1m])))`)
		if err != nil || len(s) != 1 || math.IsNaN(s[0].value) {
			t.Errorf("p99 of the %s hop: %+v %v", hop, s, err)
			continue
		}
		t.Logf("p99 latency to %s: %.2f ms", hop, s[0].value*1000)
	}
}

// prometheus is a Prometheus server of a test.
type prometheus struct {
	base string
}

// startPrometheus starts Prometheus on a free loopback port with its own
// configuration and storage in a temporary directory, scraping each job's
// target every second and evaluating the rules of rules as often.
func startPrometheus(t *testing.T, bin, rules string, targets map[string]string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %q\nscrape_configs:\n", rules)
	for job, target := range targets {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", job, target)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testredis.FreePort(t))
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	testredis.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- prometheus log:\n%s", b)
		}
	})
	p := &prometheus{base: "http://" + addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testkit.WaitReady(ctx, p.base+"/-/ready", func() error {
		select {
		case <-exited:
			return fmt.Errorf("prometheus exited")
		default:
			return nil
		}
	}); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("prometheus not ready: %v\n%s", err, b)
	}
	return p
}

// sample is one series of a query's result.
type sample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query; an error means it did not parse or run.
func (p *prometheus) query(q string) ([]sample, error) {
	var body struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     json.RawMessage
		}
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(q), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var res []struct {
			Metric map[string]string
			Value  [2]any
		}
		if err := json.Unmarshal(body.Data.Result, &res); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(res))
		for _, r := range res {
			s, _ := r.Value[1].(string)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %v", q, r.Value[1])
			}
			out = append(out, sample{labels: r.Metric, value: v})
		}
		return out, nil
	case "scalar":
		return []sample{{}}, nil
	}
	return nil, fmt.Errorf("%s: result of type %s", q, body.Data.ResultType)
}

// rule is an alerting rule as Prometheus loaded it.
type rule struct {
	Name, Query, Health, LastError string
}

// rules returns the alerting rules Prometheus loaded.
func (p *prometheus) rules(t *testing.T) []rule {
	t.Helper()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					rule
					Type string
				}
			}
		}
	}
	if err := p.get("/api/v1/rules", &body); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			if r.Type == "alerting" {
				out = append(out, r.rule)
			}
		}
	}
	return out
}

func (p *prometheus) get(path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}
