package main

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// redisPingTimeout bounds the check of a given FERRY_REDIS_URL; a dev Redis
// on loopback answers in microseconds, so a slow answer means it is not there.
const redisPingTimeout = 2 * time.Second

// ensureRedis returns a Redis URL to export and a function that stops
// whatever ensureRedis started. It uses given when it answers PING, and
// otherwise starts an embedded miniredis on a free loopback port, so
// `make run` needs nothing installed.
func ensureRedis(ctx context.Context, given string, log zerolog.Logger) (string, func(), error) {
	if given != "" {
		if err := pingRedis(ctx, given); err == nil {
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

func pingRedis(ctx context.Context, url string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("parse FERRY_REDIS_URL: %w", err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, redisPingTimeout)
	defer cancel()
	return c.Ping(ctx).Err()
}
