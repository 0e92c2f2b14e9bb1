package bench

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// reactor reads the WebSocket connections of a shard from one epoll set:
// one goroutine waits for the sockets that are ready, reads each once into
// a buffer it reuses, and hands the frames in it to their connection with
// one clock reading for the whole batch. A shard has one reactor per core
// it may use. Delivering a frame to a simulated user then costs one read
// and no goroutine switch: thousands of goroutines each parked on its own
// socket cost the generator more than the servers it measures.
type reactor struct {
	sh     *shard
	epfd   int
	buf    []byte
	events []syscall.EpollEvent
	mu     sync.Mutex
	conns  []*conn // every connection added
	stop   atomic.Bool
	done   chan struct{}
}

func newReactor(sh *shard) (*reactor, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r := &reactor{sh: sh, epfd: fd, buf: make([]byte, 256<<10), events: make([]syscall.EpollEvent, 512), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// add hands the socket of a connected and joined conn to the reactor
// (level-triggered: a socket with more to read than one read takes is
// reported again).
func (r *reactor) add(c *conn) error {
	c.reactor.Store(r) // publishes c to the reactor's goroutine
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.idx - r.sh.cfg.FirstConn)}
	if err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, c.ws.fd, &ev); err != nil {
		return err
	}
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	return nil
}

func (r *reactor) run() {
	defer close(r.done)
	defer syscall.Close(r.epfd)
	for {
		n, err := r.wait()
		if err != nil && err != syscall.EINTR {
			r.sh.noteErr("epoll_wait: " + err.Error())
			time.Sleep(10 * time.Millisecond)
		}
		if n <= 0 {
			if r.stop.Load() {
				r.endAll()
				return
			}
			continue
		}
		now := time.Now().UnixMicro()
		for _, ev := range r.events[:n] {
			r.read(r.sh.conns[ev.Fd], now)
		}
	}
}

// wait returns the sockets that are ready. Under load some nearly always
// are: it asks without blocking first, which spares the scheduler handing
// the thread's P over and back as a blocking system call does.
func (r *reactor) wait() (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(r.epfd), uintptr(unsafe.Pointer(&r.events[0])),
		uintptr(len(r.events)), 0, 0, 0)
	if e == 0 && n > 0 {
		return int(n), nil
	}
	return syscall.EpollWait(r.epfd, r.events, 100)
}

// read reads what one socket has (one read: more is reported again) and
// handles the frames in it, received at now.
func (r *reactor) read(c *conn, now int64) {
	if c.reactor.Load() == nil || c.ws.fd < 0 {
		return // ended earlier in this batch
	}
	n, err := rawRead(c.ws.fd, r.buf)
	if n > 0 {
		closing := false
		ferr := c.ws.feed(r.buf[:n], func(op byte, p []byte) {
			if c.frame(op, p, now) {
				closing = true
			}
		})
		if ferr != nil {
			c.sh.noteErr("read: " + ferr.Error())
		}
		if ferr != nil || closing {
			r.end(c)
		}
		return
	}
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	r.end(c) // the server closed the connection, or it failed
}

// end closes a connection the reactor reads. Shutting the socket down
// first makes a send blocked on it fail, so that its lock is free.
func (r *reactor) end(c *conn) {
	fd := c.ws.fd
	_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, fd, &syscall.EpollEvent{})
	_ = syscall.Shutdown(fd, syscall.SHUT_RDWR)
	c.wmu.Lock()
	c.ws.closed = true
	_ = syscall.Close(fd)
	c.ws.fd = -1
	c.wmu.Unlock()
	c.sh.gone(c)
}

// endAll ends what is still open when the reactor stops.
func (r *reactor) endAll() {
	r.mu.Lock()
	conns := r.conns
	r.mu.Unlock()
	for _, c := range conns {
		if c.ws.fd >= 0 {
			r.end(c)
		}
	}
}

// close stops the reactor once the connections it reads have ended, and
// waits for it (a moment at most).
func (r *reactor) close() {
	r.stop.Store(true)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
	}
}

// rawRead reads a socket without the scheduler's system-call hand-off.
// It never blocks: the descriptor duplicates one Go's net opened
// non-blocking, and duplicates share that flag (it belongs to the open
// file, not to the descriptor).
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
