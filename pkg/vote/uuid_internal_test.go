package vote

import (
	"math/rand/v2"
	"testing"
)

// parseUUIDReference is parseUUID one digit at a time, as it was before
// hex8: the word-at-a-time version must accept and decode the same.
func parseUUIDReference(s []byte, id *[16]byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	val := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	j := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		hi, ok1 := val(s[i])
		lo, ok2 := val(s[i+1])
		if !ok1 || !ok2 {
			return false
		}
		id[j] = hi<<4 | lo
		j++
		i++
	}
	return true
}

// Every byte value at every position of a few UUIDs, upper and lower case.
func TestParseUUIDEveryByte(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for k := range 8 {
		var id [16]byte
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		base := AppendID(nil, &id)
		if k%2 == 1 {
			for i, c := range base {
				if c >= 'a' && c <= 'f' {
					base[i] = c - 'a' + 'A'
				}
			}
		}
		for pos := range base {
			for c := range 256 {
				s := append([]byte(nil), base...)
				s[pos] = byte(c)
				var got, want [16]byte
				gotOK, wantOK := parseUUID(s, &got), parseUUIDReference(s, &want)
				if gotOK != wantOK || (gotOK && got != want) {
					t.Fatalf("parseUUID(%q) = %x, %v; want %x, %v", s, got, gotOK, want, wantOK)
				}
			}
		}
	}
}
