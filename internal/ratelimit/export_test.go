package ratelimit

// Held is the number of slots a Concurrency holds, idle ones included.
func (c *Concurrency) Held() int { return c.held() }
