package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
	replay "github.com/roomstream/roomstream/workers/audit"
)

var spaces = regexp.MustCompile(`\s{2,}`)

// replayRun runs `roomstream replay args...` and returns stdout, stderr.
func replayRun(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runReplay(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// TestReplayCommand drives the replay subcommands as a user would, on a
// log applied by the workers' Applier.
func TestReplayCommand(t *testing.T) {
	srv := testredis.Start(t, nil)
	rdb := srv.Client()
	cfg := streams.Config{RedisURL: srv.URL(), KeyPrefix: "prod:", Partitions: 4, RecoveryWindow: 2 * time.Minute,
		InboundRetention: time.Hour, InboundMaxLen: 100000}
	t.Setenv("ROOMSTREAM_REDIS_URL", srv.URL())
	t.Setenv("ROOMSTREAM_KEY_PREFIX", "prod:")
	t.Setenv("ROOMSTREAM_PARTITIONS", "4")
	ctx := context.Background()
	c := streams.New(rdb, cfg)
	a := workers.NewApplier(c, time.Second, time.Hour, nil)
	at := time.Now().Add(-time.Minute)
	send := func(user, typ, room string, data string) {
		at = at.Add(time.Second)
		env := &streams.Envelope{Type: typ, RoomID: room, UserID: user, UserName: strings.ToUpper(user[:1]) + user[1:],
			SocketID: "s-" + user, ConnectorID: "c1", Data: []byte(data), At: at}
		id, err := c.Append(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		env.ID = id
		if _, err := a.Apply(ctx, streams.Partition(room, 4), 1, env); err != nil {
			t.Fatal(err)
		}
	}
	send("alice", schemas.EventJoinRoom, "r1", `{"roomId":"r1"}`)
	send("bob", schemas.EventLockRoom, "r1", `{"roomId":"r1"}`)
	// A completion needs a started upload (issue 12).
	send("alice", schemas.EventFileUploadStarted, "r1", `{"fileId":"f1","fileName":"notes.md","roomId":"r1","size":3000}`)
	send("alice", schemas.EventFileUploadCompleted, "r1", `{"fileId":"f1","fileName":"notes.md","roomId":"r1","size":3000}`)
	send("bob", schemas.EventJoinRoom, "r2", `{"roomId":"r2"}`)

	out, errOut, err := replayRun(t, "", "timeline", "-room", "r1")
	if err != nil {
		t.Fatalf("timeline: %v\n%s", err, errOut)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 5 || !strings.HasPrefix(rows[0], "TIME") {
		t.Fatalf("timeline table:\n%s", out)
	}
	for i, want := range []string{"join-room  Alice (alice)  applied", "lock-room  Bob (bob)  refused: not_member  why: join room r1 first",
		"file-upload-started  Alice (alice)  applied", `file-upload-completed  Alice (alice)  applied  file "notes.md" (2.9 KiB) added as f1`} {
		if got := spaces.ReplaceAllString(rows[i+1], "  "); !strings.Contains(got, want) {
			t.Errorf("timeline row %d: %q lacks %q", i+1, got, want)
		}
	}
	if !strings.Contains(errOut, "timeline: 4 event(s)") {
		t.Errorf("stderr of timeline: %q", errOut)
	}
	live, _, err := replayRun(t, "", "timeline", "-format", "jsonl", "-quiet")
	if err != nil {
		t.Fatal(err)
	}
	var ev replay.Event
	if err := json.Unmarshal([]byte(strings.Split(live, "\n")[0]), &ev); err != nil || ev.Type != "join-room" || ev.Outcome != "applied" {
		t.Errorf("first jsonl event: %+v, %v", ev, err)
	}

	out, _, err = replayRun(t, "", "verify", "-quiet")
	if err != nil || !strings.Contains(out, "2 room(s): 2 match, 0 differ") {
		t.Fatalf("verify of a healthy log: %v\n%s", err, out)
	}
	out, _, err = replayRun(t, "", "verify", "-quiet", "-room", "nope")
	if err != nil || !strings.Contains(out, "room nope: matches: no such room") {
		t.Errorf("verify of a room that never existed: %v\n%s", err, out)
	}
	rdb.SRem(ctx, "prod:room:{r1}:users", "alice")
	out, _, err = replayRun(t, "", "verify", "-quiet", "-settle", "0")
	if err == nil || !strings.Contains(err.Error(), "1 room(s) differ") {
		t.Errorf("verify after corruption returned %v", err)
	}
	if !strings.Contains(out, "room r1: DIFFERS") || !strings.Contains(out, "prod:room:{r1}:users alice: log member, live (absent)") {
		t.Errorf("verify output after corruption:\n%s", out)
	}
	rdb.SAdd(ctx, "prod:room:{r1}:users", "alice")

	file := filepath.Join(t.TempDir(), "log.jsonl")
	if _, errOut, err = replayRun(t, "", "export", "-o", file); err != nil || !strings.Contains(errOut, "export: 5 entries") {
		t.Fatalf("export: %v %s", err, errOut)
	}
	out, _, err = replayRun(t, "", "import", "-prefix", "inv:", "-i", file, "-quiet")
	if err != nil || !strings.Contains(out, `imported 5 entries of 4 partitions under prefix "inv:"`) {
		t.Fatalf("import: %v %s", err, out)
	}
	imported, _, err := replayRun(t, "", "timeline", "-format", "jsonl", "-quiet", "-log-prefix", "inv:")
	if err != nil || imported != live {
		t.Errorf("timeline of the import differs from the live one: %v\n%s\n%s", err, imported, live)
	}
	raw, _ := os.ReadFile(file)
	if _, _, err := replayRun(t, string(raw), "import", "-prefix", "inv2:", "-quiet"); err != nil {
		t.Errorf("import from stdin: %v", err)
	}
	for _, p := range []string{"inv:", "inv2:"} {
		if out, _, err := replayRun(t, "", "clean", "-prefix", p); err != nil || !strings.Contains(out, "deleted") {
			t.Errorf("clean %s: %v %s", p, err, out)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: roomstream replay"},
		{[]string{"rewind"}, `unknown command "rewind"`},
		{[]string{"timeline", "-format", "xml"}, "-format must be table or jsonl"},
		{[]string{"timeline", "-since", "yesterday"}, "-since"},
		{[]string{"timeline", "-since", "-1h", "-until", "-2h"}, "must be before -until"},
		{[]string{"timeline", "-room", "no spaces"}, "bad room id"},
		{[]string{"export", "-until", "soon"}, "-until"},
		{[]string{"import"}, "-prefix is required"},
		{[]string{"import", "-prefix", "prod:"}, "would cover"},
		{[]string{"clean"}, "clean needs -prefix P or -all"},
		{[]string{"clean", "-prefix", "prod:room:"}, "would cover"},
		{[]string{"verify", "extra"}, `unexpected argument "extra"`},
	} {
		_, _, err := replayRun(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
	if n, _ := rdb.Exists(ctx, "prod:room:{r1}").Result(); n != 1 {
		t.Errorf("the live room is gone")
	}
}
