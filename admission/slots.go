package admission

// Slots: what a site has left to give (vaccination appointments, tickets), counted by the
// host in the store beside the room, so that everyone waiting learns it from their next
// answer, and so that a room may stop taking places once nothing is left. The count is
// not a limit of the room's: admission goes on by capacity and rate whatever it says.
// These are its rules; a store keeps the count, and hands it to every operation in
// Limits.Slots.

// NotCounted is the slot count of a room whose host does not count slots.
const NotCounted int64 = -1

// MaxSlots is the largest slot count: below 2^53, so that a Redis script's numbers (Lua
// doubles) hold it exactly.
const MaxSlots int64 = 1_000_000_000_000_000

// SetSlots is the count a store keeps when the host sets it to n: n itself, at most
// MaxSlots, and NotCounted for any n below 0 (the host stops counting).
func SetSlots(n int64) int64 {
	if n < 0 {
		return NotCounted
	}
	return min(n, MaxSlots)
}

// TakeSlots is the count after the host takes n slots from have (gives -n back, for a
// cancellation, when n < 0): never below 0, never above MaxSlots. A count that is not kept
// (have < 0) stays so: nothing is taken.
func TakeSlots(have, n int64) int64 {
	switch {
	case have < 0:
		return NotCounted
	case n >= have:
		return 0
	case n <= have-MaxSlots:
		return MaxSlots
	}
	return have - n
}

// SoldOut reports whether a room under limits l takes no new places: it closes when sold
// out (CloseWhenSoldOut) and its host counts no slot left (Slots == 0). Waiters keep their
// places and go in as capacity and rate allow (a slot may come back, say by a
// cancellation); passes are renewed as before.
func SoldOut(l Limits) bool { return l.CloseWhenSoldOut && l.Slots == 0 }
