package waitingroom

import (
	"context"
	"fmt"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Slots left: what the site has to give (appointments, tickets), which the host counts in
// the room's store so that the queue hears of it. Every instance's waiters learn the count
// from their next answer (Status.Slots; the built-in pages and the JSON show it), with no
// store call of its own: the store reads it in the same operation as the poll. Under
// Config.CloseWhenSoldOut a count of 0 closes the room to newcomers (Status.SoldOut).
//
// The count is a signal to the queue, not a reservation: the host's own booking decides
// who gets a slot, and takes one from the count when it does. It outlives an idle room and
// expires with the room's stored settings (store.SettingsTTL after its last change; a
// registry's instances touch them hourly); deleting the room ends it.

// SetSlots sets the count of slots the site has left to n, for every instance; n < 0 stops
// counting (Status.SlotsCounted false, and the room no longer closes when sold out). A
// count is at most admission.MaxSlots. The store must implement store.Slots; its failure
// wraps ErrStore.
func (r *Room) SetSlots(ctx context.Context, n int64) error {
	s, err := r.slotStore()
	if err != nil {
		return err
	}
	err = r.call(ctx, OpControl, func(ctx context.Context) error { return s.SetSlots(ctx, r.id, n) })
	if err == nil {
		r.sawSlots(admission.SetSlots(n))
	}
	return err
}

// TakeSlots takes n slots from the count (n < 0 gives -n back: a cancellation) and returns
// how many are left, never fewer than 0: taking more than are left leaves 0. When the room
// counts no slots it takes nothing and returns admission.NotCounted (-1). Like SetSlots, it
// is one atomic store operation and reaches every instance's waiters with their next answer.
func (r *Room) TakeSlots(ctx context.Context, n int64) (int64, error) {
	s, err := r.slotStore()
	if err != nil {
		return admission.NotCounted, err
	}
	left := admission.NotCounted
	err = r.call(ctx, OpControl, func(ctx context.Context) (err error) {
		left, err = s.TakeSlots(ctx, r.id, n)
		return err
	})
	if err != nil {
		return admission.NotCounted, err
	}
	r.sawSlots(left)
	return left, nil
}

// Message returns the operator's message to the room's visitors (Config.Messages) as the
// room's settings say now.
func (r *Room) Message() Message { return r.settings.Load().msg }

func (r *Room) slotStore() (store.Slots, error) {
	s, ok := r.store.(store.Slots)
	if !ok {
		return nil, fmt.Errorf("%w: the store keeps no count of slots (store.Slots)", ErrConfig)
	}
	return s, nil
}

// sawSlots keeps n, a store answer's count of slots left, for the visitors' statuses;
// only a store that keeps a count says anything of it (another's answers carry a zero).
func (r *Room) sawSlots(n int64) {
	if !r.countsSlots || n < 0 {
		n = admission.NotCounted
	}
	r.slotsSeen.Store(n)
}
