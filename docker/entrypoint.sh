#!/bin/sh
# nmr container entrypoint: check that the data directories are usable, then exec nmr so that
# gunicorn is PID 1 and gets docker's SIGTERM itself (a shell in between would swallow it).
#
#   docker run nmr                   -> nmr serve
#   docker run nmr --bind 0.0.0.0:4873 -> nmr serve --bind 0.0.0.0:4873
#   docker run nmr check-config      -> print the effective configuration, secrets masked
set -eu

case "${1:-serve}" in
    -*) set -- serve "$@" ;;
    "") set -- serve ;;
esac

if [ "$1" = "serve" ]; then
    for dir in "${NMR_METADATA__LEVELDB__PATH:-}" "${NMR_STORAGE__LOCAL__PATH:-}"; do
        [ -n "$dir" ] || continue
        mkdir -p "$dir" 2>/dev/null || true
        if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
            echo "nmr: $dir is not a directory that uid $(id -u) can write." >&2
            echo "nmr: give the volume to that user, e.g. on the host: chown -R $(id -u):$(id -g) /srv/nmr" >&2
            exit 1
        fi
    done
fi

exec nmr "$@"
