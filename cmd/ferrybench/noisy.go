package main

import (
	"fmt"
	"strconv"
)

// noisySetting is one way of keeping the noisy customer in check: no cap,
// FERRY_CUSTOMER_MAX_INFLIGHT (per worker) or
// FERRY_CUSTOMER_FLEET_MAX_INFLIGHT (across the workers, leases in Redis).
type noisySetting struct {
	Name      string
	PerWorker int
	Fleet     int
}

// noisySettings compares the per-worker and the fleet-wide cap at the
// same number: with K workers the per-worker cap lets the noisy customer
// hold K times as many slots as the fleet-wide one.
func noisySettings(ns noisySpec) []noisySetting {
	return []noisySetting{
		{Name: "noisy/nocap"},
		{Name: fmt.Sprintf("noisy/cap%d", ns.Cap), PerWorker: ns.Cap},
		{Name: fmt.Sprintf("noisy/fleetcap%d", ns.Cap), Fleet: ns.Cap},
	}
}

// noisyWorkers is how many ferry processes the noisy scenario runs: at
// least two, or a per-worker cap cannot differ from a fleet-wide one.
func (b *bench) noisyWorkers() int { return max(b.o.workers, 2) }

// noisyEnv is the workers' environment for one setting.
func (b *bench) noisyEnv(w *world, ns noisySpec, s noisySetting) []string {
	return append(b.ferryEnv(w, ns.Concurrency, s.PerWorker),
		"FERRY_CUSTOMER_FLEET_MAX_INFLIGHT="+strconv.Itoa(s.Fleet),
		// A dead worker's places would lapse within this; none die here.
		"FERRY_CUSTOMER_FLEET_LEASE_TTL=15s",
	)
}
