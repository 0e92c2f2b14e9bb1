package streams

import "hash/fnv"

// Partition maps a room to one of n inbound partitions with FNV-1a, so
// that every event of a room goes through one stream, in order. The
// mapping is part of the stored data: all processes of a deployment must
// use the same n (EnsureMeta checks it).
func Partition(roomID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(roomID))
	return int(h.Sum32() % uint32(n))
}
