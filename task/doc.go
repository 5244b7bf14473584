// Package task is ferry's task submission contract: the JSON body of a
// message on the tasks queue (Task, Attachment), the rules a valid task
// follows (Decode, Validate, Encode, ValidID, Limits) and the stable reason
// codes of a rejection (InvalidError). Producers encode with it and every
// worker decodes with it, so both sides hold one schema.
//
// It imports only the standard library so that its tests and its fuzz
// target build without the SQS plumbing (package queue) that carries the
// bodies.
package task
