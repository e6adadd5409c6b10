package clientcert

// Len is the number of entries of c (tests).
func (c *ForwardedCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
