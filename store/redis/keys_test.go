package redis

import (
	"strings"
	"testing"
)

// TestKeysShareOneSlot checks the key builder: every key of a room, liveness chunks
// included, hashes to the slot of the room's hash tag, so no script crosses Cluster slots
// (miniredis does not enforce slots; the Cluster tests do).
func TestKeysShareOneSlot(t *testing.T) {
	for _, room := range []string{"booking", "a", "tenant-42.vaccines", "X_Y"} {
		keys := Keys("wr", room)
		if len(keys) != 5 {
			t.Fatalf("Keys: %d keys, the script takes 5", len(keys))
		}
		base := strings.TrimSuffix(keys[0], "m")
		keys = append(keys, base+"q:1795683600000:0", base+"q:1795683600000:244")
		want := slot("{" + room + "}")
		for _, k := range keys {
			if !strings.HasPrefix(k, "wr:{"+room+"}:") {
				t.Errorf("key %q lacks the prefix and hash tag", k)
			}
			if got := slot(k); got != want {
				t.Errorf("key %q in slot %d, the room's tag in %d", k, got, want)
			}
		}
	}
	// Rooms differ in slots, so a Cluster spreads tenants.
	if slot(Keys("wr", "a")[0]) == slot(Keys("wr", "b")[0]) {
		t.Error("rooms a and b share a slot: the hash tag is not the room")
	}
}

func TestSlotKnownValues(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{"123456789": 0x31C3 % 16384, "foo": 12182, "{user1000}.following": slot("user1000")} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// slot is the Redis Cluster key slot: CRC16 (XMODEM) of the hash tag, or the whole key.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
