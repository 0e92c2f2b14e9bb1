package auth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

// TestRoomsClaim: the `rooms` claim is parsed into the identity; its
// entries allow their rooms and the rooms their prefixes start; an
// absent or malformed claim allows none, and a malformed one says why
// without making the token invalid here (the connector decides that).
func TestRoomsClaim(t *testing.T) {
	v := NewVerifier(testSecret, "", "", 0)
	tok := func(rooms any) Identity {
		t.Helper()
		c := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
		if rooms != nil {
			c["rooms"] = rooms
		}
		id, err := v.Verify(signed(t, jwt.SigningMethodHS256, []byte(testSecret), c))
		if err != nil {
			t.Fatalf("rooms %v: %v", rooms, err)
		}
		return id
	}
	for _, tc := range []struct {
		rooms   any
		invalid bool
		allowed []string
		refused []string
	}{
		{nil, false, nil, []string{"design", ""}},
		{[]string{}, false, nil, []string{"design"}},
		{[]string{"design", "team-*"}, false, []string{"design", "team-a", "team-"}, []string{"design2", "desig", "team", "other"}},
		{[]string{"*"}, false, []string{"design", "x"}, nil},
		{"design", true, nil, []string{"design"}},
		{[]any{"design", 3}, true, nil, []string{"design"}},
		{[]string{"a b"}, true, nil, []string{"a b"}},
		{[]string{"te*am"}, true, nil, []string{"team"}},
		{[]string{"team-**"}, true, nil, []string{"team-a"}},
		{map[string]string{"a": "b"}, true, nil, []string{"a"}},
	} {
		id := tok(tc.rooms)
		if id.Rooms.Present != (tc.rooms != nil) || (id.Rooms.Invalid != "") != tc.invalid {
			t.Errorf("rooms %v: present %v, invalid %q", tc.rooms, id.Rooms.Present, id.Rooms.Invalid)
		}
		for _, r := range tc.allowed {
			if !id.Rooms.Allows(r) {
				t.Errorf("rooms %v: %q refused", tc.rooms, r)
			}
		}
		for _, r := range tc.refused {
			if id.Rooms.Allows(r) {
				t.Errorf("rooms %v: %q allowed", tc.rooms, r)
			}
		}
	}
}

// TestClaimsKept: the identity carries the token's payload as signed,
// for a backend that decides access on claims of its own.
func TestClaimsKept(t *testing.T) {
	c := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "org": "acme", "roles": []string{"editor"}}
	id, err := NewVerifier(testSecret, "", "", 0).Verify(signed(t, jwt.SigningMethodHS256, []byte(testSecret), c))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(id.Claims, &got); err != nil || got["org"] != "acme" || got["sub"] != "alice" {
		t.Errorf("claims %s (%v)", id.Claims, err)
	}
}

// TestMaxLifetime: with MaxLifetime (API_REVOKE_TTL), a token that lives
// longer is refused, counted from iat or, without one, from now; one
// within it passes.
func TestMaxLifetime(t *testing.T) {
	v := NewHS256Verifier(testSecret, VerifierOptions{MaxLifetime: 24 * time.Hour, Leeway: 5 * time.Second})
	now := time.Now()
	for _, tc := range []struct {
		name string
		c    jwt.MapClaims
		ok   bool
	}{
		{"a day from iat", jwt.MapClaims{"sub": "a", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()}, true},
		{"issued long ago, a day in all", jwt.MapClaims{"sub": "a", "iat": now.Add(-23 * time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()}, true},
		{"25 hours from iat", jwt.MapClaims{"sub": "a", "iat": now.Unix(), "exp": now.Add(25 * time.Hour).Unix()}, false},
		{"25 hours from iat, most of it past", jwt.MapClaims{"sub": "a", "iat": now.Add(-24 * time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()}, false},
		{"no iat, a day left", jwt.MapClaims{"sub": "a", "exp": now.Add(23 * time.Hour).Unix()}, true},
		{"no iat, a year left", jwt.MapClaims{"sub": "a", "exp": now.Add(365 * 24 * time.Hour).Unix()}, false},
	} {
		_, err := v.Verify(signed(t, jwt.SigningMethodHS256, []byte(testSecret), tc.c))
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && (err == nil || err.Code != schemas.CodeInvalidToken || !strings.Contains(err.Message, "revocations last (24h)")):
			t.Errorf("%s: %v, want invalid_token naming the revocation lifetime", tc.name, err)
		}
	}
	// Without the bound, a long token passes.
	long := jwt.MapClaims{"sub": "a", "exp": now.Add(365 * 24 * time.Hour).Unix()}
	if _, err := NewVerifier(testSecret, "", "", 0).Verify(signed(t, jwt.SigningMethodHS256, []byte(testSecret), long)); err != nil {
		t.Errorf("no MaxLifetime: %v", err)
	}
}

// TestSignRooms: SignToken writes the rooms claim, and refuses a
// malformed one.
func TestSignRooms(t *testing.T) {
	tok, err := SignToken(HS256Key(testSecret), TokenClaims{UserID: "bob", TTL: time.Minute, Rooms: []string{"design", "team-*"}})
	if err != nil {
		t.Fatal(err)
	}
	id, verr := NewVerifier(testSecret, "", "", 0).Verify(tok)
	if verr != nil || !id.Rooms.Allows("team-x") || id.Rooms.Allows("other") {
		t.Fatalf("signed rooms: %+v %v", id.Rooms, verr)
	}
	if _, err := SignToken(HS256Key(testSecret), TokenClaims{UserID: "bob", TTL: time.Minute, Rooms: []string{"a b"}}); err == nil {
		t.Error("SignToken accepted a malformed rooms claim")
	}
}
