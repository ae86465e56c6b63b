# The function of the shell-hello custom runtime: `bootstrap` sources this file and calls `handler` with the
# event's JSON as $1. Print the response (JSON) on stdout; log on stderr; return non-zero to fail.

handler() {
  event="$1"
  # A naive look for "name": "…" (a real function would use jq, or a language with a JSON parser).
  name="$(printf '%s' "$event" | sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')"
  [ -n "$name" ] || name="world"
  echo "{\"level\": \"INFO\", \"message\": \"greeting\", \"name\": \"$name\"}" >&2
  printf '{"message":"Hello, %s!","requestId":"%s","runtime":"%s"}' \
    "$name" "$REQUEST_ID" "${AWS_EXECUTION_ENV:-custom}"
}
