package admission

import (
	"math"
	"slices"
)

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
	// Top returns the newest live word written by Push or Set to block k (tickets
	// [k*Block, (k+1)*Block)) since it was made: no word in the block is live unless Top
	// is. 0: none. A queue that cannot tell returns a word live now: the block is then
	// read ticket by ticket.
	Top(k int64) uint32
}

// MemQueue is a Queue in memory: 4 bytes a ticket, a count of live words per bucket, and
// a top per Block of tickets. The zero value is an empty queue whose cursor is at ticket 0.
type MemQueue struct {
	words []uint32
	live  Buckets
	start int64    // the ticket of words[0]: the cursor
	tops  []uint32 // tops[i] is block start/Block+i's
}

// Word implements Queue.
func (q *MemQueue) Word(i int64) uint32 { return q.words[i] }

// Set implements Queue.
func (q *MemQueue) Set(i int64, old, w uint32) {
	q.live.Add(counted(old), -1)
	q.live.Add(counted(w), 1)
	q.words[i] = w
	q.raise(q.start+i, w)
}

// Push implements Queue.
func (q *MemQueue) Push(w uint32) {
	n := q.start + int64(len(q.words))
	q.words = append(q.words, w)
	q.live.Add(counted(w), 1)
	if k := n/Block - q.start/Block; k == int64(len(q.tops)) {
		q.tops = append(q.tops, 0)
	}
	q.raise(n, w)
}

// raise keeps the top of ticket n's block.
func (q *MemQueue) raise(n int64, w uint32) {
	if c := counted(w); c > 0 {
		t := &q.tops[n/Block-q.start/Block]
		*t = max(*t, w)
	}
}

// Pop implements Queue. A block whose top is older than every bucket still counted holds
// no counted word: it is passed without reading its words.
func (q *MemQueue) Pop(n int64) {
	for i := int64(0); i < n; {
		k := (q.start+i)/Block - q.start/Block
		end := min(n, (k+q.start/Block+1)*Block-q.start)
		if int64(q.tops[k]) >= q.live.Oldest() {
			for _, w := range q.words[i:end] {
				q.live.Add(counted(w), -1)
			}
		}
		i = end
	}
	q.tops = q.tops[(q.start+n)/Block-q.start/Block:]
	q.words = q.words[n:]
	q.start += n
	if cap(q.words) > 1024 && len(q.words) < cap(q.words)/4 {
		q.words = slices.Clone(q.words) // let the passed part go
	}
	if cap(q.tops) > 64 && len(q.tops) < cap(q.tops)/4 {
		q.tops = slices.Clone(q.tops)
	}
}

// Top implements Queue.
func (q *MemQueue) Top(k int64) uint32 {
	if i := k - q.start/Block; i >= 0 && i < int64(len(q.tops)) {
		return q.tops[i]
	}
	return 0
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

// Oldest returns the oldest bucket counted, or MaxInt64 when none is.
func (bs *Buckets) Oldest() int64 {
	if len(bs.b) == 0 {
		return math.MaxInt64
	}
	return bs.b[0].bucket
}

// Sum returns the waiters counted.
func (bs *Buckets) Sum() int64 { return bs.total }
