# nginx.sh - nginx and wrk for relgate's benchmarks (sourced by
# bench/run.sh and bench/chat.sh; bash).

# nginx_need - install wrk and nginx-light when missing, without letting
# Debian's postinst start a system nginx on port 80; false if they are
# still missing
nginx_need() {
	command -v wrk >/dev/null && command -v nginx >/dev/null && return 0
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
	$sudo chmod +x /usr/sbin/policy-rc.d
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nginx-light >/dev/null 2>&1 ||
		{ $sudo apt-get update -q >/dev/null 2>&1 &&
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nginx-light >/dev/null 2>&1; } || true
	$sudo rm -f /usr/sbin/policy-rc.d
	command -v wrk >/dev/null && command -v nginx >/dev/null
}

# nginx_conf DIR WORKERS HTTP - DIR/nginx.conf: WORKERS processes in the
# foreground, pid and error log in DIR, no access log, keep-alive without
# a request bound, and HTTP (zones and servers) inside the http block
nginx_conf() {
	mkdir -p "$1/logs"
	cat >"$1/nginx.conf" <<CONF
worker_processes $2;
daemon off;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
$3
}
CONF
}
