package wrprom

// Tracked is how many rooms c keeps state for.
func Tracked(c *Collector) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.states)
}
