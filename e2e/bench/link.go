package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
)

// link is a session's end of one generator shard, in this process or in
// a child process (roombench shard): the shard's configuration and
// control messages go down as JSON lines, its ticks and replies come
// back.
type link struct {
	ticks atomic.Int64 // ticks received
	w     io.WriteCloser
	conns int
	msgs  chan shardMsg
	mu    sync.Mutex
	last  tickMsg
	cmd   *exec.Cmd
	ended chan struct{}
}

func (l *link) send(m ctlMsg) error {
	b, _ := json.Marshal(m)
	_, err := l.w.Write(append(b, '\n'))
	return err
}

// startShard starts one shard, in this process or as a child process.
func (s *Session) startShard(ctx context.Context, cfg ShardConfig, child bool) (*link, error) {
	l := &link{conns: cfg.Conns, msgs: make(chan shardMsg, 16), ended: make(chan struct{})}
	var out io.ReadCloser
	if child {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := command(s.opt.GeneratorCPUs, exe, "shard")
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if l.w, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		if out, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("bench: start generator process: %w", err)
		}
		l.cmd = cmd
	} else {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		l.w, out = inW, outR
		go func() {
			err := ServeShard(ctx, inR, outW)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
			_ = outW.Close()
		}()
	}
	b, _ := json.Marshal(cfg)
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	go s.read(l, out)
	return l, nil
}

// read dispatches a shard's messages: ticks feed the progress lines, the
// others wait for whoever asked.
func (s *Session) read(l *link, out io.Reader) {
	defer close(l.ended)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m shardMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		if m.Kind == "tick" && m.Tick != nil {
			l.mu.Lock()
			l.last = *m.Tick
			l.mu.Unlock()
			s.mu.Lock()
			s.pending.MergeSparse(m.Tick.Latency)
			s.mu.Unlock()
			l.ticks.Add(1)
			select {
			case s.ticked <- struct{}{}:
			default:
			}
			continue
		}
		l.msgs <- m
	}
}

// await returns the next message of a kind from a shard.
func (l *link) await(ctx context.Context, kind string) (shardMsg, error) {
	for {
		select {
		case <-ctx.Done():
			return shardMsg{}, ctx.Err()
		case m := <-l.msgs:
			if m.Err != "" {
				return m, errors.New(m.Err)
			}
			if m.Kind == kind {
				return m, nil
			}
		case <-l.ended:
			select {
			case m := <-l.msgs:
				if m.Kind == kind {
					return m, nil
				}
			default:
			}
			return shardMsg{}, fmt.Errorf("bench: generator process ended before %q", kind)
		}
	}
}
