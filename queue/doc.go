// Package queue holds ferry's SQS plumbing and the Event message schema: the
// Consumer that leases messages (long poll, heartbeat, batched acks,
// retry-later, release), the Sequencer that keeps FIFO groups in order, the
// Producer and Publisher, and the dead-letter helpers used by the worker and
// by `ferry dlq`. The task body it carries is package task's contract.
//
// The package talks to SQS only through SQSAPI, which *sqs.Client
// satisfies; it knows nothing about fetching or credentials.
package queue
