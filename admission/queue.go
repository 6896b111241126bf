package admission

import "slices"

// Queue keeps a Room's word per ticket of its current epoch, from the admission cursor to
// the next ticket, and counts the live ones. A word is a liveness bucket plus one (0: the
// place is gone), or Taken with the bucket of the moment admission passed it; see Live.
// The rules that read and write the words are the Room's; a Queue only keeps them.
//
// MemQueue is the one stores use. The planner keeps its own, which works its crowd's
// words out from when each visitor polls instead of storing them.
type Queue interface {
	// Word returns the word of ticket cursor+i, for i from 0 to the queue's length.
	Word(i int64) uint32
	// Set replaces the word of ticket cursor+i; old is its word now (as Word returns it).
	Set(i int64, old, w uint32)
	// Push adds the word of a new ticket at the back.
	Push(w uint32)
	// Pop forgets the first n words: the cursor passed them.
	Pop(n int64)
	// Live returns how many words are live at bucket b under l's hold (see Live).
	Live(b int64, l Limits) int64
}

// MemQueue is a Queue in memory: 4 bytes a ticket, and a count of live words per bucket.
// The zero value is an empty queue.
type MemQueue struct {
	words []uint32
	live  Buckets
}

// Word implements Queue.
func (q *MemQueue) Word(i int64) uint32 { return q.words[i] }

// Set implements Queue.
func (q *MemQueue) Set(i int64, old, w uint32) {
	q.live.Add(counted(old), -1)
	q.live.Add(counted(w), 1)
	q.words[i] = w
}

// Push implements Queue.
func (q *MemQueue) Push(w uint32) {
	q.words = append(q.words, w)
	q.live.Add(counted(w), 1)
}

// Pop implements Queue.
func (q *MemQueue) Pop(n int64) {
	for _, w := range q.words[:n] {
		q.live.Add(counted(w), -1)
	}
	q.words = q.words[n:]
	if cap(q.words) > 1024 && len(q.words) < cap(q.words)/4 {
		q.words = slices.Clone(q.words) // let the passed part go
	}
}

// Live implements Queue.
func (q *MemQueue) Live(b int64, l Limits) int64 {
	q.live.Prune(b - HoldBuckets(l))
	return q.live.Sum()
}

// Len returns how many words the queue keeps.
func (q *MemQueue) Len() int { return len(q.words) }

// counted is the bucket a word is counted in, or 0 for a word that counts nowhere.
func counted(w uint32) int64 {
	if w == 0 || w&Taken != 0 {
		return 0
	}
	return int64(w)
}

// Buckets counts waiters by the liveness bucket of their last poll, oldest first, with
// their total. The zero value is empty.
type Buckets struct {
	b     []bucketCount
	total int64
}

type bucketCount struct{ bucket, n int64 }

// Add adds d waiters to bucket b (b 0: none). Buckets stay sorted, and new ones are nearly
// always last. Taking from a bucket already pruned does nothing: its waiters no longer count.
func (bs *Buckets) Add(b, d int64) {
	if b == 0 || d == 0 {
		return
	}
	i := len(bs.b)
	for i > 0 && bs.b[i-1].bucket > b {
		i--
	}
	if i > 0 && bs.b[i-1].bucket == b {
		bs.b[i-1].n += d
		bs.total += d
		return
	}
	if d < 0 {
		return
	}
	bs.b = slices.Insert(bs.b, i, bucketCount{b, d})
	bs.total += d
}

// Prune drops the buckets before oldest: their waiters' places are gone.
func (bs *Buckets) Prune(oldest int64) {
	i := 0
	for i < len(bs.b) && bs.b[i].bucket < oldest {
		bs.total -= bs.b[i].n
		i++
	}
	if i > 0 {
		bs.b = slices.Delete(bs.b, 0, i)
	}
}

// Sum returns the waiters counted.
func (bs *Buckets) Sum() int64 { return bs.total }
