package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/redisconn"
)

// redisPingTimeout bounds the check of a given FERRY_REDIS_URL; a dev Redis
// on loopback answers in microseconds, so a slow answer means it is not there.
const redisPingTimeout = 2 * time.Second

// redisMode reads FERRY_REDIS_MODE the way ferry does: single (the
// default) or cluster.
func redisMode(v string) (redisconn.Mode, error) {
	m := redisconn.Mode(strings.ToLower(strings.TrimSpace(v)))
	if m == "" {
		return redisconn.Single, nil
	}
	if !slices.Contains(redisconn.Modes(), m) {
		return "", fmt.Errorf("FERRY_REDIS_MODE=%q: want one of %v", v, redisconn.Modes())
	}
	return m, nil
}

// ensureRedis returns a Redis URL to export and a function that stops
// whatever ensureRedis started. It uses given when it answers PING, and
// otherwise starts an embedded miniredis on a free loopback port, so
// `make run` needs nothing installed. In cluster mode given must name a
// running cluster: an embedded single server would not be one.
func ensureRedis(ctx context.Context, given string, mode redisconn.Mode, log zerolog.Logger) (string, func(), error) {
	if mode == redisconn.Cluster {
		if given == "" {
			return "", nil, fmt.Errorf("FERRY_REDIS_MODE=cluster needs FERRY_REDIS_URL naming the cluster's nodes (redis://host:port?addr=host2:port2); unset FERRY_REDIS_MODE for an embedded Redis")
		}
		if err := pingRedis(ctx, given, redisconn.Cluster); err != nil {
			return "", nil, fmt.Errorf("the Redis Cluster at FERRY_REDIS_URL does not answer (%v): start it (e.g. .ci/with-redis-cluster.sh make run) or unset FERRY_REDIS_MODE for an embedded Redis", err)
		}
		log.Info().Msg("using the Redis Cluster at FERRY_REDIS_URL")
		return given, func() {}, nil
	}
	if given != "" {
		if err := pingRedis(ctx, given, redisconn.Single); err == nil {
			log.Info().Msg("using the Redis at FERRY_REDIS_URL")
			return given, func() {}, nil
		} else {
			log.Warn().Err(err).Msg("FERRY_REDIS_URL does not answer; starting an embedded Redis instead")
		}
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	url := "redis://" + mr.Addr()
	log.Info().Str("redis", url).Msg("started embedded Redis (miniredis)")
	return url, mr.Close, nil
}

func pingRedis(ctx context.Context, url string, mode redisconn.Mode) error {
	c, err := redisconn.Open(url, mode)
	if err != nil {
		return fmt.Errorf("FERRY_REDIS_URL: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, redisPingTimeout)
	defer cancel()
	return c.Ping(ctx).Err()
}
