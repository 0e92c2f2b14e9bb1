package containers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// JSDir is the folder of the Node design client (package.json,
// package-lock.json, design-client.mjs).
func JSDir() string { return filepath.Join(RepoRoot(), "e2e", "containers", "js") }

// EnsureNodeModules installs the design client's dependencies from its
// lock file when node_modules is missing.
func EnsureNodeModules() error {
	if _, err := os.Stat(filepath.Join(JSDir(), "node_modules", "socket.io-client")); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm not found: install Node.js 18+ and npm: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = JSDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", JSDir(), err, out)
	}
	return nil
}

// JSLine is one line the design client printed.
type JSLine struct {
	T         int64             `json:"t"`
	Kind      string            `json:"kind"` // started, connect, disconnect, connect_error, event, ui, ack
	Name      string            `json:"name"`
	Args      []json.RawMessage `json:"args"`
	Fn        string            `json:"fn"`
	Data      json.RawMessage   `json:"data"`
	ID        string            `json:"id"` // socket id on connect
	Recovered bool              `json:"recovered"`
	Reason    string            `json:"reason"`
	Message   string            `json:"message"`
	Error     *string           `json:"error"`
	AckID     int               `json:"ackId"`
}

// JSClient is a running design client (node design-client.mjs).
type JSClient struct {
	t     testing.TB
	User  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	lines  []JSLine
	acks   map[int]chan JSLine
	nextID int
	wake   chan struct{}
	exited chan struct{}
}

// StartJS starts the design client for user against url (a connector or
// a load balancer in front of connectors).
func StartJS(t testing.TB, url, user, name, token string) *JSClient {
	t.Helper()
	cmd := exec.Command("node", "design-client.mjs")
	cmd.Dir = JSDir()
	cmd.Env = append(os.Environ(), "ROOMSTREAM_URL="+url, "ROOMSTREAM_TOKEN="+token, "USER_ID="+user, "USER_NAME="+name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	j := &JSClient{t: t, User: user, cmd: cmd, stdin: stdin, acks: map[int]chan JSLine{}, wake: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(j.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l JSLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				continue
			}
			j.mu.Lock()
			j.lines = append(j.lines, l)
			ch := j.acks[l.AckID]
			if l.Kind == "ack" {
				delete(j.acks, l.AckID)
			}
			close(j.wake)
			j.wake = make(chan struct{})
			j.mu.Unlock()
			if l.Kind == "ack" && ch != nil {
				ch <- l
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		j.Exit()
		if t.Failed() {
			t.Logf("design client %s stderr:\n%s", user, stderr.String())
		}
	})
	return j
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (j *JSClient) send(cmd map[string]any) {
	j.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := j.stdin.Write(append(b, '\n')); err != nil {
		j.t.Fatalf("design client %s: %v", j.User, err)
	}
}

// Join calls the design's joinRoom(roomId).
func (j *JSClient) Join(roomID string) { j.send(map[string]any{"op": "join", "roomId": roomID}) }

// SetFile sets the design's currentFile.
func (j *JSClient) SetFile(name string) {
	j.send(map[string]any{"op": "set", "file": map[string]string{"name": name}})
}

// SetRoom sets the design's currentRoom.
func (j *JSClient) SetRoom(id string) {
	j.send(map[string]any{"op": "set", "room": map[string]string{"id": id}})
}

// Progress calls the design's reportUploadProgress.
func (j *JSClient) Progress(fileID, uploadID string, bytes, total int64) {
	j.send(map[string]any{"op": "progress", "fileId": fileID, "uploadId": uploadID, "bytes": bytes, "total": total})
}

// Emit emits event with an ack and returns the ack's first argument.
func (j *JSClient) Emit(ctx context.Context, event string, payload any) (json.RawMessage, error) {
	j.mu.Lock()
	j.nextID++
	id := j.nextID
	ch := make(chan JSLine, 1)
	j.acks[id] = ch
	j.mu.Unlock()
	j.send(map[string]any{"op": "emit", "id": id, "event": event, "payload": payload})
	select {
	case l := <-ch:
		if l.Error != nil {
			return nil, fmt.Errorf("%s: %s", event, *l.Error)
		}
		return l.Data, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no ack for %s: %w", event, ctx.Err())
	}
}

// Lines returns what the client printed so far.
func (j *JSClient) Lines() []JSLine {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]JSLine(nil), j.lines...)
}

// WaitFor waits until some line satisfies ok and returns it.
func (j *JSClient) WaitFor(ctx context.Context, what string, ok func(JSLine) bool) (JSLine, error) {
	seen := 0
	for {
		j.mu.Lock()
		lines, wake := j.lines[seen:], j.wake
		seen = len(j.lines)
		j.mu.Unlock()
		for _, l := range lines {
			if ok(l) {
				return l, nil
			}
		}
		select {
		case <-wake:
		case <-j.exited:
			return JSLine{}, fmt.Errorf("design client %s exited while waiting for %s", j.User, what)
		case <-ctx.Done():
			return JSLine{}, fmt.Errorf("design client %s: no %s: %w", j.User, what, ctx.Err())
		}
	}
}

// SocketID is the id of the last connect.
func (j *JSClient) SocketID() string {
	id := ""
	for _, l := range j.Lines() {
		if l.Kind == "connect" {
			id = l.ID
		}
	}
	return id
}

// Exit disconnects the client and waits for node to end.
func (j *JSClient) Exit() {
	select {
	case <-j.exited:
		return
	default:
	}
	b, _ := json.Marshal(map[string]string{"op": "exit"})
	_, _ = j.stdin.Write(append(b, '\n'))
	_ = j.stdin.Close()
	select {
	case <-j.exited:
	case <-time.After(5 * time.Second):
		_ = j.cmd.Process.Kill()
		<-j.exited
	}
}
