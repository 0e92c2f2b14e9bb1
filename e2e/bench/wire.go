package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// A run's coordinator drives its shards with JSON lines: commands go to a
// shard (a child process's stdin, or a pipe for the in-process shard) and
// messages come back (its stdout).

// ctlMsg is a command to a shard.
type ctlMsg struct {
	Cmd      string        `json:"cmd"` // "step" or "stop"
	Rate     float64       `json:"rate,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
}

// shardMsg is a message from a shard.
type shardMsg struct {
	Kind  string    `json:"kind"` // tick, ready, step, final
	Tick  *tickMsg  `json:"tick,omitempty"`
	Ready *readyMsg `json:"ready,omitempty"`
	Step  *stepMsg  `json:"step,omitempty"`
	Final *finalMsg `json:"final,omitempty"`
	Err   string    `json:"err,omitempty"`
}

// tickMsg is sent every second.
type tickMsg struct {
	Live    int64      `json:"live"`
	Failed  int64      `json:"failed"`
	Phase   string     `json:"phase"`
	C       Counters   `json:"c"`
	Latency SparseHist `json:"lat"` // deliveries of the last second
}

// readyMsg says every connection was attempted.
type readyMsg struct {
	Live    int64         `json:"live"`
	Failed  int64         `json:"failed"`
	Connect SparseHist    `json:"connect"`
	Join    SparseHist    `json:"join"`
	Took    time.Duration `json:"took"`
}

// stepMsg is the result of one step.
type stepMsg struct {
	C       Counters      `json:"c"`
	Latency SparseHist    `json:"lat"`
	Sending time.Duration `json:"sending"`
	Behind  int64         `json:"behind"`
	Live    int64         `json:"live"`
}

// finalMsg ends a shard's run.
type finalMsg struct {
	C       Counters       `json:"c"`
	Latency SparseHist     `json:"lat"`
	Errors  map[string]int `json:"errors,omitempty"`
}

// ServeShard runs one shard: it reads its ShardConfig as the first line of
// in, opens the connections, and then runs the steps it is told to,
// writing messages to out, until "stop" or the end of in.
func ServeShard(ctx context.Context, in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("bench shard: read config: %w", err)
	}
	var cfg ShardConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("bench shard: config: %w", err)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m shardMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	sh, err := newShard(cfg)
	if err != nil {
		send(shardMsg{Kind: "final", Err: err.Error(), Final: &finalMsg{}})
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var phase struct {
		sync.Mutex
		s string
	}
	setPhase := func(s string) { phase.Lock(); phase.s = s; phase.Unlock() }
	setPhase("connect")
	ticks := make(chan struct{})
	go func() {
		defer close(ticks)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			h := sh.tickLat.Swap(&Histogram{})
			phase.Lock()
			p := phase.s
			phase.Unlock()
			send(shardMsg{Kind: "tick", Tick: &tickMsg{Live: sh.live.Load(), Failed: sh.failed.Load(), Phase: p,
				C: sh.c.load(), Latency: h.Sparse()}})
		}
	}()
	start := time.Now()
	sh.connectAll(ctx)
	send(shardMsg{Kind: "ready", Ready: &readyMsg{Live: sh.live.Load(), Failed: sh.failed.Load(),
		Connect: sh.connect.Sparse(), Join: sh.join.Sparse(), Took: time.Since(start)}})
	setPhase("idle")
	dec := json.NewDecoder(r)
	for {
		var m ctlMsg
		if err := dec.Decode(&m); err != nil || m.Cmd == "stop" {
			break
		}
		if m.Cmd != "step" {
			continue
		}
		setPhase("send")
		before := sh.c.load()
		sh.stepLat.Store(&Histogram{})
		sending, behind := sh.sendStep(ctx, m.Rate, m.Duration)
		after := sh.c.load()
		send(shardMsg{Kind: "step", Step: &stepMsg{C: after.sub(before), Latency: sh.stepLat.Load().Sparse(),
			Sending: sending, Behind: behind, Live: sh.live.Load()}})
		setPhase("idle")
	}
	sh.closeAll()
	cancel()
	<-ticks
	send(shardMsg{Kind: "final", Final: &finalMsg{C: sh.c.load(), Latency: sh.lat.Sparse(), Errors: sh.errorSamples()}})
	return nil
}
