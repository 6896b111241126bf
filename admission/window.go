package admission

// window is the rate window: the times of the newest admissions (claims) of the last
// RateWindow, oldest first. An admission at t counts while the store's time is before
// t+RateWindow, so at most PerMinute fall in any RateWindow; holding the newest PerMinute
// of them is enough to tell how many more the rate allows, and when (see Room.nextPoll).
type window struct {
	t    []int64
	head int
}

// add records an admission at now, keeping at most size.
func (w *window) add(now, size int64) {
	if n := int64(len(w.t) - w.head); n >= max(size, 1) {
		w.head += int(n - max(size, 1) + 1)
	}
	if w.head > 0 && w.head >= len(w.t)/2 {
		w.t = append(w.t[:0], w.t[w.head:]...)
		w.head = 0
	}
	w.t = append(w.t, now)
}

// count drops what left the window by now and returns how many admissions it holds.
func (w *window) count(now int64) int64 {
	for w.head < len(w.t) && w.t[w.head] <= now-RateWindow.Milliseconds() {
		w.head++
	}
	if w.head == len(w.t) {
		w.t, w.head = w.t[:0], 0
	}
	return int64(len(w.t) - w.head)
}

// at returns the time of the i-th oldest admission in the window (after count).
func (w *window) at(i int64) int64 { return w.t[w.head+int(i)] }
