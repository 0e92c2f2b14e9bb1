// Command mutate is the mutation check behind `go tool task mutate`: it
// breaks the code behind each guarantee of the README on purpose, one
// small change at a time, runs the tests that should notice, and fails if
// any breakage goes unnoticed.
//
// Each mutation (the list is in mutations.go) is a file, an exact snippet
// of it, its replacement and the tests (package and names) that must fail
// once it is applied. For each, in order: the module is copied (the files
// git tracks or would track, uncommitted changes included) into a
// temporary folder, never touching the working tree; the snippet is
// replaced (it must occur exactly once, so the list cannot silently rot
// when the code changes); the named tests run with `go test -count=1 -v`
// (no -race, to keep it fast) under a timeout; the mutation is "caught"
// when one of them fails and "SURVIVED" when they all pass. A named test that does not run at all (renamed,
// deleted, or skipped for want of redis-server or Docker) is an error too.
// `go test ./e2e/mutate/` checks the list against the code in an instant
// (every snippet once in its file, every named test declared), without
// running any mutation.
//
//	go run ./e2e/mutate                 # every mutation
//	go run ./e2e/mutate -only skip-fence,trim-no-pending-guard
//	go run ./e2e/mutate -list           # names, files and tests
//	go run ./e2e/mutate -baseline       # first run every named test unmutated (must pass)
//	go run ./e2e/mutate -only skip-fence -check ./workers/   # which tests of a package catch it
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

type result struct {
	m       mutation
	status  string // caught, SURVIVED, NO TEST, ERROR
	by      string
	detail  string
	elapsed time.Duration
}

func main() { os.Exit(run()) }

func run() int {
	only := flag.String("only", "", "comma-separated names of the mutations to run (default: all)")
	list := flag.Bool("list", false, "print the mutations and exit")
	baseline := flag.Bool("baseline", false, "first run each named test on the unmutated copy: all must pass")
	timeout := flag.Duration("timeout", 5*time.Minute, "go test -timeout for a mutation that sets none")
	keep := flag.Bool("keep", false, "keep the temporary copy and the test logs")
	override := flag.String("check", "", "run these tests instead of the list's, to look for the test that catches a mutation: PKG[:Test1,Test2] (no names: every test of PKG)")
	doc := flag.String("doc", "", "write the table of mutations into this Markdown file (between its markers) and exit")
	flag.Parse()

	if *doc != "" {
		if err := writeTable(*doc); err != nil {
			fatalf("%v", err)
		}
		return 0
	}
	todo := mutations
	if *only != "" {
		todo = nil
		for _, n := range strings.Split(*only, ",") {
			i := slices.IndexFunc(mutations, func(m mutation) bool { return m.Name == n })
			if i < 0 {
				fatalf("no mutation named %q (go run ./e2e/mutate -list)", n)
			}
			todo = append(todo, mutations[i])
		}
	}
	if *override != "" {
		pkg, names, _ := strings.Cut(*override, ":")
		c := check{Pkg: pkg}
		if names != "" {
			c.Tests = strings.Split(names, ",")
		}
		todo = slices.Clone(todo)
		for i := range todo {
			todo[i].Checks = []check{c}
		}
	}
	if *list {
		for _, m := range todo {
			fmt.Printf("%-22s %-28s %s\n", m.Name, m.File, m.Guarantee)
			for _, c := range m.Checks {
				fmt.Printf("%-22s   %s %s\n", "", c.Pkg, testsOrAll(c.Tests))
			}
		}
		return 0
	}

	root, err := gitOutput(".", "rev-parse", "--show-toplevel")
	if err != nil {
		fatalf("not in the repository: %v", err)
	}
	root = strings.TrimSpace(root)
	// The copy has no .git: a test that builds an earlier commit (the
	// rolling upgrade) takes it from here (harness.GitRepoEnv).
	if err := os.Setenv("ROOMSTREAM_GIT_REPO", root); err != nil {
		fatalf("%v", err)
	}

	// Every snippet first, on the working tree: a stale list fails at
	// once, not after minutes of tests.
	bad := false
	for _, m := range todo {
		n, err := m.occurrences(root)
		if err != nil {
			fmt.Printf("mutation %s: %v\n", m.Name, err)
			bad = true
			continue
		}
		if n != 1 {
			fmt.Printf("mutation %s: the snippet occurs %d times in %s (want exactly once; update the list in e2e/mutate/mutations.go):\n%s\n", m.Name, n, m.File, indent(m.From))
			bad = true
		}
	}
	if bad {
		return 2
	}

	tmp, err := os.MkdirTemp("", "roomstream-mutate-")
	if err != nil {
		fatalf("%v", err)
	}
	if *keep {
		fmt.Printf("copy and logs in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	mod := filepath.Join(tmp, "roomstream")
	logs := filepath.Join(tmp, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		fatalf("%v", err)
	}
	if err := copyModule(root, mod); err != nil {
		fatalf("copy the module: %v", err)
	}
	// Interrupted: the temporary copy goes with us, and so do the tests.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	if *baseline {
		fmt.Println("baseline: the named tests on the unmutated copy")
		seen := map[string]bool{}
		for _, m := range todo {
			for _, c := range m.Checks {
				key := c.Pkg + " " + strings.Join(c.Tests, ",")
				if seen[key] {
					continue
				}
				seen[key] = true
				t0 := time.Now()
				out := runCheck(ctx, mod, logs, "baseline", c, timeoutOf(m, *timeout))
				fmt.Printf("  %s %s: %s (%s)\n", c.Pkg, testsOrAll(c.Tests), out.summary(), round(time.Since(t0)))
				if out.err != nil || len(out.failed) > 0 {
					fmt.Println("baseline failed: the tests must pass before the mutations mean anything")
					return 1
				}
			}
		}
	}

	var results []result
	for i, m := range todo {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("[%d/%d] %s: %s in %s\n", i+1, len(todo), m.Name, strings.SplitN(m.Guarantee, ":", 2)[0], m.File)
		r := runMutation(ctx, mod, logs, m, timeoutOf(m, *timeout))
		fmt.Printf("[%d/%d] %s: %s %s (%s)\n", i+1, len(todo), m.Name, r.status, r.by, round(r.elapsed))
		if r.detail != "" {
			fmt.Println(indent(r.detail))
		}
		results = append(results, r)
	}

	fmt.Printf("\nmutation check, %s (go run ./e2e/mutate)\n\n", round(time.Since(start)))
	fmt.Println("| mutation | file | result | caught by | time |")
	fmt.Println("|---|---|---|---|---|")
	failed := ctx.Err() != nil
	for _, r := range results {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.m.Name, r.m.File, r.status, r.by, round(r.elapsed))
		if r.status != "caught" {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

func runMutation(ctx context.Context, mod, logs string, m mutation, timeout time.Duration) result {
	t0 := time.Now()
	r := result{m: m}
	path := filepath.Join(mod, m.File)
	orig, err := os.ReadFile(path)
	if err != nil {
		r.status, r.detail = "ERROR", err.Error()
		return r
	}
	if n := strings.Count(string(orig), m.From); n != 1 {
		r.status, r.detail = "ERROR", fmt.Sprintf("snippet occurs %d times", n)
		return r
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(orig), m.From, m.To, 1)), 0o644); err != nil {
		r.status, r.detail = "ERROR", err.Error()
		return r
	}
	defer func() {
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			fatalf("restore %s in the copy: %v", m.File, err)
		}
	}()
	var passed, missing []string
	for _, c := range m.Checks {
		out := runCheck(ctx, mod, logs, m.Name, c, timeout)
		fmt.Printf("    %s %s: %s\n", c.Pkg, testsOrAll(c.Tests), out.summary())
		switch {
		case out.buildFailed:
			r.status, r.detail, r.elapsed = "ERROR", "the mutated code does not build:\n"+out.tail, time.Since(t0)
			return r
		case len(out.failed) > 0 || out.timedOut:
			r.status, r.by, r.elapsed = "caught", strings.Join(out.failed, ", "), time.Since(t0)
			if out.timedOut {
				r.by = strings.TrimPrefix(r.by+", timed out", ", ")
			}
			return r
		case out.err != nil:
			r.status, r.detail, r.elapsed = "ERROR", out.err.Error()+"\n"+out.tail, time.Since(t0)
			return r
		}
		passed = append(passed, out.passed...)
		missing = append(missing, out.missing...)
		for _, s := range out.skipped {
			missing = append(missing, s+" (skipped)")
		}
	}
	r.elapsed = time.Since(t0)
	if len(passed) == 0 {
		r.status, r.by = "NO TEST", "missing: "+strings.Join(missing, ", ")
		return r
	}
	r.status = "SURVIVED"
	r.by = "passed: " + short(passed)
	if len(missing) > 0 {
		r.by += "; missing: " + strings.Join(missing, ", ")
	}
	return r
}

type checkOutput struct {
	passed, failed, skipped, missing []string
	buildFailed, timedOut            bool
	err                              error
	tail                             string
}

func (o checkOutput) summary() string {
	var s []string
	if o.buildFailed {
		return "build failed"
	}
	if len(o.failed) > 0 {
		s = append(s, "FAIL "+strings.Join(o.failed, ", "))
	}
	if o.timedOut {
		s = append(s, "timed out")
	}
	if len(o.passed) > 0 {
		s = append(s, "pass "+short(o.passed))
	}
	if len(o.skipped) > 0 {
		s = append(s, "skipped "+strings.Join(o.skipped, ", "))
	}
	if len(o.missing) > 0 {
		s = append(s, "not found "+strings.Join(o.missing, ", "))
	}
	if o.err != nil && len(s) == 0 {
		s = append(s, o.err.Error())
	}
	return strings.Join(s, "; ")
}

var (
	topResult = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)
	pkgFail   = regexp.MustCompile(`^FAIL\s+\S+\s+\[(build failed|setup failed)\]`)
)

// runCheck runs one go test in the copy and sorts its top-level tests.
func runCheck(ctx context.Context, mod, logs, name string, c check, timeout time.Duration) checkOutput {
	args := []string{"test", "-count=1", "-v", "-timeout", timeout.String()}
	if len(c.Tests) > 0 {
		args = append(args, "-run", "^("+strings.Join(c.Tests, "|")+")$")
	}
	args = append(args, c.Pkg)
	cctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "go", args...)
	cmd.Dir = mod
	cmd.WaitDelay = 10 * time.Second
	ownGroup(cmd)
	logName := filepath.Join(logs, name+"-"+strings.NewReplacer("/", "_", ".", "").Replace(c.Pkg)+".log")
	var buf bytes.Buffer
	f, err := os.Create(logName)
	if err != nil {
		return checkOutput{err: err}
	}
	defer f.Close()
	cmd.Stdout = io.MultiWriter(&buf, f)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()

	var o checkOutput
	results := map[string]string{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if m := topResult.FindStringSubmatch(line); m != nil {
			results[m[2]] = m[1]
		}
		if pkgFail.MatchString(line) {
			o.buildFailed = true
		}
		if strings.HasPrefix(line, "panic: test timed out") {
			o.timedOut = true
		}
	}
	o.tail = strings.Join(lines[max(0, len(lines)-30):], "\n")
	names := c.Tests
	if len(names) == 0 {
		for n := range results {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	for _, n := range names {
		switch results[n] {
		case "PASS":
			o.passed = append(o.passed, n)
		case "FAIL":
			o.failed = append(o.failed, n)
		case "SKIP":
			o.skipped = append(o.skipped, n)
		default:
			o.missing = append(o.missing, n)
		}
	}
	if runErr != nil && len(o.failed) == 0 && !o.buildFailed && !o.timedOut {
		if ctx.Err() != nil {
			o.err = ctx.Err()
		} else {
			o.err = fmt.Errorf("go test: %v (log: %s)", runErr, logName)
		}
	}
	return o
}

// copyModule copies the files git tracks, and the untracked ones it does
// not ignore, from root to dst; node_modules folders (ignored) are linked
// so that the Node and browser tests find their packages.
func copyModule(root, dst string) error {
	out, err := gitOutput(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return err
	}
	n := 0
	for _, rel := range strings.Split(out, "\x00") {
		if rel == "" {
			continue
		}
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			return err
		}
		n++
		if filepath.Base(rel) == "package.json" {
			nm := filepath.Join(filepath.Dir(src), "node_modules")
			if _, err := os.Stat(nm); err == nil {
				if err := os.Symlink(nm, filepath.Join(filepath.Dir(to), "node_modules")); err != nil {
					return err
				}
			}
		}
	}
	fmt.Printf("copied %d files of %s into %s\n", n, root, dst)
	return nil
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	return string(out), err
}

func timeoutOf(m mutation, def time.Duration) time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	return def
}

func testsOrAll(tests []string) string {
	if len(tests) == 0 {
		return "(all tests)"
	}
	return strings.Join(tests, ", ")
}

// short lists a few names, and how many more.
func short(names []string) string {
	if len(names) <= 4 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}

func round(d time.Duration) time.Duration {
	return d.Round(100 * time.Millisecond)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mutate: "+format+"\n", args...)
	os.Exit(2)
}
