// Package ports picks loopback TCP ports for the processes tests and
// benchmarks start.
//
// A port taken from the kernel (listening on :0) and handed to another
// process lies in the ephemeral range, the same range outgoing connections
// take their local ports from: on a machine busy with thousands of
// loopback connections one of them can take it before the process binds,
// which then fails with "address already in use". Free picks ports below
// that range instead, where only listeners live.
package ports

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Base is the lowest port Free returns.
const Base = 10000

// Free returns a loopback port that was free a moment ago, as is port+span
// (for Redis Cluster's bus port, span 10000; 0 for none), both below the
// ephemeral range. When that range leaves too little room below it, Free
// falls back to ports anywhere above Base.
func Free(span int) (int, error) {
	hi := ephemeralLow() - span
	if hi-Base < 1000 {
		hi = 65536 - span
	}
	for range 100 {
		p := Base + rand.IntN(hi-Base)
		if free(p) && (span == 0 || free(p+span)) {
			return p, nil
		}
	}
	return 0, errors.New("ports: no free loopback port found in 100 tries")
}

func free(p int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// ephemeralLow is the first port of Linux's ephemeral range (32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= Base {
		return 32768
	}
	return low
}
