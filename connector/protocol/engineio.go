package protocol

import (
	"encoding/json"
	"errors"
)

// EngineType is an Engine.IO packet type, the first character of a text
// frame.
type EngineType byte

const (
	EngineOpen    EngineType = '0'
	EngineClose   EngineType = '1'
	EnginePing    EngineType = '2'
	EnginePong    EngineType = '3'
	EngineMessage EngineType = '4'
	EngineUpgrade EngineType = '5'
	EngineNoop    EngineType = '6'
)

// ErrEmptyPacket is returned for an empty text frame.
var ErrEmptyPacket = errors.New("protocol: empty engine.io packet")

// ErrBadEngineType is returned for a text frame whose first byte is not an
// Engine.IO packet type.
var ErrBadEngineType = errors.New("protocol: unknown engine.io packet type")

// DecodeEngine splits a text frame into its Engine.IO type and data.
func DecodeEngine(frame []byte) (EngineType, []byte, error) {
	if len(frame) == 0 {
		return 0, nil, ErrEmptyPacket
	}
	t := EngineType(frame[0])
	if t < EngineOpen || t > EngineNoop {
		return 0, nil, ErrBadEngineType
	}
	return t, frame[1:], nil
}

// Handshake is the data of the Engine.IO open packet.
type Handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// OpenPacket returns the text frame of the Engine.IO open packet.
func OpenPacket(h Handshake) []byte {
	if h.Upgrades == nil {
		h.Upgrades = []string{}
	}
	b, _ := json.Marshal(h) // cannot fail: plain struct
	return append([]byte{byte(EngineOpen)}, b...)
}

// Engine.IO error codes of HTTP error responses.
const (
	ErrCodeUnknownTransport   = 0
	ErrCodeUnknownSID         = 1
	ErrCodeBadHandshakeMethod = 2
	ErrCodeBadRequest         = 3
	ErrCodeForbidden          = 4
	ErrCodeUnsupportedVersion = 5
)

// ErrorMessages are the reference server's messages for each code.
var ErrorMessages = map[int]string{
	ErrCodeUnknownTransport:   "Transport unknown",
	ErrCodeUnknownSID:         "Session ID unknown",
	ErrCodeBadHandshakeMethod: "Bad handshake method",
	ErrCodeBadRequest:         "Bad request",
	ErrCodeForbidden:          "Forbidden",
	ErrCodeUnsupportedVersion: "Unsupported protocol version",
}
