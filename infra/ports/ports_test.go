package ports

import (
	"net"
	"strconv"
	"testing"
)

func TestFree(t *testing.T) {
	low := ephemeralLow()
	for range 50 {
		p, err := Free(10000)
		if err != nil {
			t.Fatal(err)
		}
		if p < Base || (low-10000-Base >= 1000 && p+10000 >= low) {
			t.Fatalf("port %d (bus %d) not in [%d, %d)", p, p+10000, Base, low)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
	}
}

func TestHeldPortIsNotFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if p := ln.Addr().(*net.TCPAddr).Port; free(p) {
		t.Fatalf("port %d is held but free() says it is free", p)
	}
}
