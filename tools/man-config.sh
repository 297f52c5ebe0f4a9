#!/bin/sh
# man-config.sh - relgate.json(5) from `relgated --help-config` on stdin:
# every setting, its environment name, type, default, range and meaning.
set -eu
cat <<'HEAD'
.Dd November 30, 2026
.Dt RELGATE.JSON 5
.Os
.Sh NAME
.Nm relgate.json
.Nd configuration of the relgate gateway
.Sh DESCRIPTION
.Xr relgated 8
reads one JSON object, by default from
.Pa /etc/relgate/relgate.json .
A dotted name is a path of objects:
.Cm http.listen
is
.Li {"http": {"listen": ...}} .
Every setting may also come from the environment under the name given
below, which wins over the file; names in capitals are top-level keys.
Settings marked
.Em restart
take effect at the next start, the others at a reload
.Pq Dv SIGHUP .
Secrets are never printed: they show as
.Li *** .
.Pp
.Nm relgated Fl t
checks a configuration;
.Nm relgated Fl \-help-config
prints the list below.
.Sh SETTINGS
.Bl -tag -width Ds
HEAD
# fields split on the unit separator: a tab would fold empty defaults away
us=$(printf '\037')
sed -n "s/^\([^ ]*\) env=\([^ ]*\) type=\([^ ]*\) default=\(.*\) allowed=\(.*\) flags=\([^ ]*\) -- \(.*\)\$/\1$us\2$us\3$us\4$us\5$us\6$us\7/p" |
while IFS=$us read -r name env type def allowed flags help; do
	printf '.It Cm %s\n' "$name"
	printf '%s\n' "$help" | sed 's/^[.'"'"']/\\\&&/'
	printf '.br\n'
	printf 'Environment %s; %s, default %s; allowed %s' "$env" "$type" \
		"${def:-empty}" "$allowed" | sed 's/\\/\\e/g; s/^[.'"'"']/\\\&&/'
	case $flags in *restart*) printf '; restart' ;; esac
	printf '.\n'
done
cat <<'TAIL'
.El
.Sh FILES
.Bl -tag -width Ds -compact
.It Pa /etc/relgate/relgate.json
the configuration of the packaged service
.It Pa /etc/default/relgate
its environment
.El
.Sh SEE ALSO
.Xr relgated 8
TAIL
