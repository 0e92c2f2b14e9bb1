package streams

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// RandomID returns n random bytes as URL-safe base64 (no padding). With
// n = 16 (128 bits) it is a valid roomstream id.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// MustJSON encodes v, a payload of plain structs that always encodes; it
// panics otherwise (a programming error, not an input one).
func MustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}
