#!/bin/bash
cd /tmp/perf
B="--conns 1000 --rooms 10 --senders 100 --rate 20 --payload-bytes 64 --duration 8s --warmup 2s --allow-loss"
for r in 1 2; do
./run.sh d$r-s1 "RATE_LIMIT_PER_SEC=0 PRESENCE=false" fanout $B
./run.sh d$r-s1p "RATE_LIMIT_PER_SEC=0 PRESENCE=true" fanout $B
./run.sh d$r-v2 "RATE_LIMIT_PER_SEC=0 PRESENCE=true" rooms $B --subscriptions 1 --settle 0s
./run.sh d$r-v2t "RATE_LIMIT_PER_SEC=0 PRESENCE=true" rooms $B --subscriptions 1 --settle 0s --typing-every 3s
./run.sh d$r-v2c "RATE_LIMIT_PER_SEC=0 PRESENCE=true" rooms $B --subscriptions 1 --settle 0s --churn 1
./run.sh d$r-s9 "RATE_LIMIT_PER_SEC=0 PRESENCE=true" typing $B --typing-every 3s --churn 1
done
