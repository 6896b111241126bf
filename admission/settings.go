package admission

// Stored settings: the one rule of which limits an operation runs by when instances hold
// different settings for a room. A store keeps each room's settings (a versioned document
// with the limits made from it); a caller says which version its limits come from; where
// they differ, the stored ones decide. So two instances with different configs, in a
// rolling deploy or a change that has reached only one of them, never admit past the
// stored capacity or rate.

// Settings are a room's settings as a store keeps them.
type Settings struct {
	// Version counts the changes of the room's settings from 1; each change adds one.
	Version int64
	// Limits are what the settings enforce: the room's own limits and its whole schedule
	// (LastEpoch unused).
	Limits Limits
	// Doc is the settings document (the caller's format: JSON of the room's Config). The
	// store keeps it, and hands it to callers whose version differs, but never reads it.
	Doc []byte
}

// Offer is what a caller tells the store about the settings its Limits come from.
type Offer struct {
	// Version is the stored version the limits were made from; 0: none (the settings of
	// the caller's code, not yet stored).
	Version int64
	// Doc, with Version 0, is the caller's settings document: the store keeps it, with the
	// limits, as version 1 when the room has none (the code's settings seed the room).
	Doc []byte
	// Overwrite stores Doc as the next version even when the room has settings: a
	// deploy's explicit choice that its code's settings replace what operators set.
	Overwrite bool
}

// Settle decides what an operation with limits l runs by, given the room's stored settings
// (nil: none). It returns the limits to apply, the settings to store when they change (nil
// otherwise: a seed or an overwrite), and the stored settings to hand back to a caller
// whose version differs (nil when it holds the stored version).
//
// The rules: a caller holding the stored version runs by its own limits (the same
// settings, and its few events near now stand for the whole schedule). Any other runs by
// the stored limits, with its own LastEpoch, and learns of them. A room without stored
// settings runs by the caller's, and keeps them when the caller offers a document.
func Settle(l Limits, stored *Settings) (apply Limits, put, stale *Settings) {
	o := l.Offer
	switch {
	case o.Doc != nil && (stored == nil || o.Overwrite):
		v := int64(1)
		if stored != nil {
			v = stored.Version + 1
		}
		s := &Settings{Version: v, Limits: l, Doc: o.Doc}
		s.Limits.LastEpoch, s.Limits.Offer, s.Limits.Slots = 0, Offer{}, 0
		return l, s, s
	case stored == nil || stored.Version == o.Version:
		return l, nil, nil
	}
	apply = stored.Limits
	apply.LastEpoch, apply.Slots = l.LastEpoch, l.Slots
	apply.Offer = Offer{Version: stored.Version}
	return apply, nil, stored
}
