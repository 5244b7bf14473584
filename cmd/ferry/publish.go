package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/taskstate"
	"github.com/ferryworks/ferry/worker"
)

// eventPublisher is where terminal events go: the events queue, the SNS
// topic, or both, each exactly once (worker.Fanout).
func (a *app) eventPublisher(awsCfg aws.Config, sqsAPI queue.SQSAPI, state *taskstate.State, m *queue.Metrics) worker.Publisher {
	var dests []worker.Destination
	if a.cfg.EventsQueueURL != "" {
		p := queue.NewPublisher(sqsAPI, a.cfg.EventsQueueURL)
		p.Metrics = m
		dests = append(dests, worker.Destination{Name: "queue", Publisher: p})
	}
	if a.cfg.EventsTopicARN != "" {
		p := queue.NewTopicPublisher(sns.NewFromConfig(awsCfg), a.cfg.EventsTopicARN)
		p.Metrics = m
		dests = append(dests, worker.Destination{Name: "topic", Publisher: p})
	}
	if len(dests) == 1 {
		return dests[0].Publisher
	}
	return &worker.Fanout{Destinations: dests, State: state, Logger: a.log}
}
