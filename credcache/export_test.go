package credcache

// DropL1 forgets c's in-process entry for a customer, so benchmarks can
// measure the Redis path alone.
func DropL1(c *Cache, customerID string) { c.forget(customerID) }
