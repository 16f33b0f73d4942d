#!/bin/sh
# Run openbsd-inetd's internal TCP echo service on 127.0.0.1:PORT, in the foreground (-d).
#
#     sh tests/inetd/run_inetd.sh PORT
#
# inetd finds an internal service by its official name and takes its port from /etc/services
# (echo = 7), so a config file alone cannot move it. A private mount namespace (needs root,
# like inetd itself) bind-mounts a services file of our own over /etc/services, where echo is
# PORT; nothing outside this process tree sees it. Each exec keeps the pid: the suite's pid
# is inetd's. inetd's rate limit is lifted (-R): by default a service invoked more than 256
# times a minute is switched off for ten minutes, and the suite opens thousands of connections;
# -q raises its listen backlog from 128, as the built-in servers do.
set -eu
port="$1"
dir="$(mktemp -d "${TMPDIR:-/tmp}/echo-inetd.XXXXXX")"
printf 'echo\t%s/tcp\n' "$port" >"$dir/services"
printf '127.0.0.1:echo\tstream\ttcp\tnowait\troot\tinternal\n' >"$dir/inetd.conf"
exec unshare --mount sh -c 'mount --bind "$1/services" /etc/services && exec /usr/sbin/inetd -d -R 1000000 -q 1024 "$1/inetd.conf"' sh "$dir"
