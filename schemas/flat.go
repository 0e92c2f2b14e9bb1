package schemas

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// The frequent event, file-upload-progress, is a flat object of strings
// and numbers. The connector validates it and the worker reads it, each
// once per event, which puts encoding/json's reflection on the busiest
// path. progressFlat reads the plain form directly and says when it
// cannot (escapes, nesting, null, booleans, repeated or unknown keys,
// keys in another case, a number that does not fit its field); the
// caller then decodes with encoding/json, so the result is always what
// encoding/json gives.

// progressField numbers the keys progressFlat knows.
var progressField = map[string]int{
	"fileId": 0, "uploadId": 1, "fileName": 2, "roomId": 3, "userId": 4, "bytesUploaded": 5,
	"totalBytes": 6, "percentage": 7, "uploadSpeed": 8, "estimatedTimeRemaining": 9,
	"seq": 10, "sentAt": 11, "userName": 12,
}

// progressFields calls set with the field number and value of every
// key of raw, a plain progress payload; false means it could not judge
// raw (set may have been called) and raw is for encoding/json.
func progressFields(raw []byte, set func(f int, s []byte, n int64, x float64) bool) bool {
	var seen uint32
	return scanFlat(raw, func(key, val []byte, str bool) bool {
		f, ok := progressField[string(key)]
		if !ok || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		switch f {
		case 0, 1, 2, 3, 4, 12:
			return str && set(f, val, 0, 0)
		case 5, 6, 10, 11:
			n, err := strconv.ParseInt(string(val), 10, 64)
			return !str && err == nil && set(f, nil, n, 0)
		default:
			x, ok := shortFloat(val)
			if !ok {
				var err error
				x, err = strconv.ParseFloat(string(val), 64)
				ok = err == nil
			}
			return !str && ok && set(f, nil, 0, x)
		}
	})
}

// progressValues is a progress payload as progressFlat reads it: its
// fields, which keys were there (has: 1<<field), and the optional
// numbers, which p points to when present. One allocation holds them
// all.
type progressValues struct {
	p   FileUploadProgressPayload
	has uint32
	opt struct {
		speed, eta float64
		seq, at    int64
	}
}

// progressRequired are the keys a progress payload must have (has).
const progressRequired = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<5 | 1<<6 | 1<<7

// progressFlat decodes raw into v (the connector's validation); false
// means it could not judge raw and it is for encoding/json.
func progressFlat(raw []byte, v *progressValues) bool {
	return progressFields(raw, func(f int, s []byte, n int64, x float64) bool {
		p := &v.p
		switch f {
		case 0:
			p.FileID = string(s)
		case 1:
			p.UploadID = string(s)
		case 2:
			p.FileName = string(s)
		case 3:
			p.RoomID = string(s)
		case 4:
			p.UserID = string(s)
		case 5:
			p.BytesUploaded = n
		case 6:
			p.TotalBytes = n
		case 7:
			p.Percentage = x
		case 8:
			v.opt.speed, p.UploadSpeed = x, &v.opt.speed
		case 9:
			v.opt.eta, p.EstimatedTimeRemaining = x, &v.opt.eta
		case 10:
			v.opt.seq, p.Seq = n, &v.opt.seq
		case 11:
			v.opt.at, p.SentAt = n, &v.opt.at
		default: // userName: not the client's to send
			return false
		}
		v.has |= 1 << f
		return true
	})
}

// fromWire sets v from w, what encoding/json read of a progress payload
// (has: the required keys).
func (v *progressValues) fromWire(w *progressWire) {
	*v = progressValues{p: FileUploadProgressPayload{UserID: w.UserID,
		UploadSpeed: w.UploadSpeed, EstimatedTimeRemaining: w.EstimatedTimeRemaining, Seq: w.Seq, SentAt: w.SentAt}}
	fromWire(v, 0, w.FileID, &v.p.FileID)
	fromWire(v, 1, w.UploadID, &v.p.UploadID)
	fromWire(v, 2, w.FileName, &v.p.FileName)
	fromWire(v, 3, w.RoomID, &v.p.RoomID)
	fromWire(v, 5, w.BytesUploaded, &v.p.BytesUploaded)
	fromWire(v, 6, w.TotalBytes, &v.p.TotalBytes)
	fromWire(v, 7, w.Percentage, &v.p.Percentage)
}

// fromWire sets field f of v (dst) from src when the key was there.
func fromWire[T any](v *progressValues, f int, src, dst *T) {
	if src != nil {
		*dst = *src
		v.has |= 1 << f
	}
}

// DecodeProgress decodes a file-upload-progress payload as encoding/json
// would, reading the plain form without reflection (the worker's path).
func DecodeProgress(raw []byte) (FileUploadProgressPayload, error) {
	var p FileUploadProgressPayload
	ok := progressFields(raw, func(f int, s []byte, n int64, x float64) bool {
		switch f {
		case 0:
			p.FileID = string(s)
		case 1:
			p.UploadID = string(s)
		case 2:
			p.FileName = string(s)
		case 3:
			p.RoomID = string(s)
		case 4:
			p.UserID = string(s)
		case 12:
			p.UserName = string(s)
		case 5:
			p.BytesUploaded = n
		case 6:
			p.TotalBytes = n
		case 7:
			p.Percentage = x
		case 8:
			p.UploadSpeed = &x
		case 9:
			p.EstimatedTimeRemaining = &x
		case 10:
			p.Seq = &n
		case 11:
			p.SentAt = &n
		}
		return true
	})
	if ok {
		return p, nil
	}
	p = FileUploadProgressPayload{}
	err := json.Unmarshal(raw, &p)
	return p, err
}

// scanFlat calls fn with every key and value of raw, a JSON object whose
// values are strings without escapes or numbers; str tells a string (val
// is its content) from a number. It returns false, having stopped, when
// raw is anything else or fn returns false.
func scanFlat(raw []byte, fn func(key, val []byte, str bool) bool) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return skipSpace(raw, i+1) == len(raw)
	}
	for {
		key, j, ok := plainString(raw, i)
		if !ok {
			return false
		}
		i = skipSpace(raw, j)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipSpace(raw, i+1)
		if i >= len(raw) {
			return false
		}
		var val []byte
		str := raw[i] == '"'
		if str {
			val, j, ok = plainString(raw, i)
		} else {
			val, j, ok = number(raw, i)
		}
		if !ok || !fn(key, val, str) {
			return false
		}
		i = skipSpace(raw, j)
		if i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return skipSpace(raw, i+1) == len(raw)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the string starting at b[i] (its opening quote): its
// content and the index after it; not ok for an escape, a control
// character or invalid UTF-8 (encoding/json would replace it).
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s = b[i+1 : j]
			return s, j + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// number reads the JSON number starting at b[i], by JSON's grammar.
func number(b []byte, i int) (n []byte, next int, ok bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = digits(b, j)
	default:
		return nil, 0, false
	}
	if j < len(b) && b[j] == '.' {
		k := digits(b, j+1)
		if k == j+1 {
			return nil, 0, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(b, j)
		if k == j {
			return nil, 0, false
		}
		j = k
	}
	return b[i:j], j, true
}

// shortFloat reads the usual numbers of a progress payload (an optional
// minus, digits, and a fraction: at most 15 digits, no exponent) as
// strconv.ParseFloat does, with its exact path: the digits as an integer
// that a float64 holds exactly, divided by an exact power of ten, which
// IEEE division rounds as ParseFloat rounds. ParseFloat's own frame is
// large, and the connector's read loop parses these on a small stack
// (connector/reader.go). false: anything else, for strconv.
func shortFloat(b []byte) (float64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var m uint64
	digits, frac := 0, -1
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
		case c == '.' && frac < 0 && i > 0:
			frac = digits
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 || frac == digits {
		return 0, false
	}
	f := float64(m)
	if frac >= 0 {
		f /= pow10[digits-frac]
	}
	if neg {
		f = -f
	}
	return f, true
}

// pow10 are the powers of ten shortFloat divides by, all exact in a
// float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// appendProgress appends v encoded as encoding/json encodes it (same
// bytes: the workers and the clients get what they got before), without
// reflection; false when it cannot (a float that is not finite, which
// encoding/json refuses too). The connector encodes every progress event
// it accepts.
func appendProgress(dst []byte, v *FileUploadProgressPayload) ([]byte, bool) {
	dst = append(dst, `{"fileId":`...)
	dst = appendJSONString(dst, v.FileID)
	dst = append(dst, `,"uploadId":`...)
	dst = appendJSONString(dst, v.UploadID)
	dst = append(dst, `,"fileName":`...)
	dst = appendJSONString(dst, v.FileName)
	dst = append(dst, `,"roomId":`...)
	dst = appendJSONString(dst, v.RoomID)
	dst = append(dst, `,"userId":`...)
	dst = appendJSONString(dst, v.UserID)
	dst = append(dst, `,"bytesUploaded":`...)
	dst = strconv.AppendInt(dst, v.BytesUploaded, 10)
	dst = append(dst, `,"totalBytes":`...)
	dst = strconv.AppendInt(dst, v.TotalBytes, 10)
	dst = append(dst, `,"percentage":`...)
	dst, ok := appendJSONFloat(dst, v.Percentage)
	if v.UploadSpeed != nil && ok {
		dst = append(dst, `,"uploadSpeed":`...)
		dst, ok = appendJSONFloat(dst, *v.UploadSpeed)
	}
	if v.EstimatedTimeRemaining != nil && ok {
		dst = append(dst, `,"estimatedTimeRemaining":`...)
		dst, ok = appendJSONFloat(dst, *v.EstimatedTimeRemaining)
	}
	if v.UserName != "" {
		dst = append(dst, `,"userName":`...)
		dst = appendJSONString(dst, v.UserName)
	}
	if v.Seq != nil {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendInt(dst, *v.Seq, 10)
	}
	if v.SentAt != nil {
		dst = append(dst, `,"sentAt":`...)
		dst = strconv.AppendInt(dst, *v.SentAt, 10)
	}
	return append(dst, '}'), ok
}

// appendJSONString appends s quoted as encoding/json quotes it: plain
// printable ASCII as it is, anything else (escapes, HTML characters,
// other runes) by encoding/json itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64 (false:
// not finite).
func appendJSONFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
