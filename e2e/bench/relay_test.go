package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// relay is a stand-in for a stack, for the generator's own tests: the
// least of Socket.IO over WebSocket that roombench needs (open packet,
// CONNECT, join-room with an ack) and a relay of each progress event to
// every member of the sender's room, the sender included, with an offset
// argument as roomstream adds. It runs in its own process (the test
// binary re-executed, see TestMain), so that what the test process uses
// is the generator's cost alone.
type relay struct {
	mu    sync.Mutex
	rooms map[string][]*relayConn
	sid   int
}

type relayConn struct {
	ws   *websocket.Conn
	room string
	wmu  sync.Mutex
}

func (rc *relayConn) write(b []byte) {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	_ = rc.ws.Write(context.Background(), websocket.MessageText, b)
}

func (rl *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	rc := &relayConn{ws: ws}
	rl.mu.Lock()
	rl.sid++
	sid := strconv.Itoa(rl.sid)
	rl.mu.Unlock()
	rc.write([]byte(`0{"sid":"` + sid + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	ctx := context.Background()
	defer func() {
		rl.mu.Lock()
		members := rl.rooms[rc.room]
		for i, m := range members {
			if m == rc {
				rl.rooms[rc.room] = append(members[:i:i], members[i+1:]...)
				break
			}
		}
		rl.mu.Unlock()
	}()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		switch {
		case bytes.HasPrefix(b, []byte("40")):
			rc.write([]byte(`40{"sid":"s` + sid + `"}`))
		case bytes.HasPrefix(b, []byte(`420["join-room",`)):
			room, _ := stringField(b, []byte(`"roomId":"`))
			rc.room = string(room)
			rl.mu.Lock()
			rl.rooms[rc.room] = append(rl.rooms[rc.room], rc)
			rl.mu.Unlock()
			rc.write([]byte(`430[{"ok":true}]`))
		case bytes.HasPrefix(b, progressPrefix) && bytes.HasSuffix(b, []byte("]")):
			out := append(b[:len(b)-1:len(b)-1], `,"1700000000000-0"]`...)
			rl.mu.Lock()
			members := append([]*relayConn(nil), rl.rooms[rc.room]...)
			rl.mu.Unlock()
			for _, m := range members {
				m.write(out)
			}
		}
	}
}

// serveRelay runs a relay on a free loopback port and prints its URL as
// the first line of stdout.
func serveRelay() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	return http.Serve(ln, &relay{rooms: map[string][]*relayConn{}})
}

// startRelay starts a relay process, pinned to core when core >= 0, and
// returns its URL and PID.
func startRelay(t *testing.T, core int) (string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "relay")
	if core >= 0 {
		cmd = exec.Command("taskset", "-c", strconv.Itoa(core), exe, "relay")
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

// TestGeneratorAgainstRelay drives one generator shard against a relay
// in rooms of 100: every event must reach the 99 other members once and
// in order, and the generator's own CPU per delivery is printed (not
// asserted: the machine is shared). Run it with -cpuprofile to see where
// the generator's time goes; BENCH_RELAY_RATE sets the events/s (300:
// 29,700 deliveries/s), BENCH_RELAY_ROOM the room size, and under
// `taskset -c 0` with BENCH_RELAY_CORE=1 the generator and the relay run
// pinned, as roombench --pin runs them.
func TestGeneratorAgainstRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few seconds of load")
	}
	url, _ := startRelay(t, relayCore())
	conns, roomSize, rate := 500, 100, 300
	if v, err := strconv.Atoi(os.Getenv("BENCH_RELAY_RATE")); err == nil {
		rate = v
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_RELAY_ROOM")); err == nil {
		roomSize = v
	}
	sh, err := newShard(ShardConfig{URLs: []string{url}, Conns: conns, RoomSize: roomSize, RampUp: time.Second,
		Secret: secret, Run: "bt", Join: true, Drain: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sh.connectAll(ctx)
	defer sh.closeAll()
	if n := sh.live.Load(); n != int64(conns) {
		t.Fatalf("%d of %d connected: %v", n, conns, sh.errorSamples())
	}
	time.Sleep(500 * time.Millisecond) // the joins' broadcasts
	before := sh.c.load()
	cpu0, _ := ReadProc(os.Getpid())
	sending, _ := sh.sendStep(ctx, float64(rate), 3*time.Second)
	cpu1, _ := ReadProc(os.Getpid())
	c := sh.c.load().sub(before)
	if c.Sent < int64(rate*2) || c.Expected != c.Sent*int64(roomSize-1) {
		t.Errorf("sent %d in %s, owed %d deliveries; want about %d sent, %d owed each", c.Sent, sending, c.Expected, rate*3, roomSize-1)
	}
	if c.Delivered != c.Expected || c.Lost() != 0 || c.Dups != 0 || c.Reordered != 0 || c.Gaps != 0 || c.Echoes != c.Sent {
		t.Errorf("counters %+v: want every delivery once, in order, and one echo per event", c)
	}
	if c.Delivered > 0 {
		t.Logf("generator: %d deliveries, %.2f µs of CPU per delivery (sending, reading and accounting)",
			c.Delivered, float64((cpu1.CPU-cpu0.CPU).Microseconds())/float64(c.Delivered))
	}
}

// relayCore is the core the relay is pinned to (BENCH_RELAY_CORE), -1
// for none.
func relayCore() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_RELAY_CORE")); err == nil {
		return n
	}
	return -1
}
