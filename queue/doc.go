// Package queue holds ferry's SQS wire contracts and plumbing: the Task and
// Event message schemas, the Consumer that leases messages (long poll,
// heartbeat, batched acks, retry-later, release), the Sequencer that keeps
// FIFO groups in order, the Producer and Publisher, and the dead-letter
// helpers used by the worker and by `ferry dlq`.
//
// The package talks to SQS only through SQSAPI, which *sqs.Client
// satisfies; it knows nothing about fetching or credentials.
package queue
