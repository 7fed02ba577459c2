#!/usr/bin/env bash
# `check && ok "..." || bad "..."` reports a check (ok only echoes, so bad never follows it), and single
# quotes keep `$` literal in JavaScript for `node -e`:
# shellcheck disable=SC2015,SC2016
# Checks deploy/nginx/nginx.conf in two steps:
#   1. `nginx -t` on the file as shipped, with a throwaway self-signed certificate where the file expects
#      one (/etc/nginx/tls/) and the upstream names bastion-1 and bastion-2 resolvable (nginx -t resolves them).
#   2. The proxying itself: a real Bastion (api-key mode) behind nginx running the same file, on free
#      loopback ports: health over HTTP, the HTTPS redirect, tools/list with a key, 401 without one, an SSE
#      answer streamed through intact, nginx's 413, and a client unable to dodge the per-IP limit by
#      forging X-Forwarded-For.
#
# How the names and paths are provided: as root, in a private mount namespace (`unshare -m`) where
# /etc/hosts, /etc/passwd, /etc/group, /etc/nginx and nginx's temp directory are bind-mounted copies, so
# the file is checked unchanged and nothing on the host is touched. Without root (or unshare), in a
# rewritten copy instead: upstream names become 127.0.0.1, every path points into a temp directory, and
# the listeners move to free ports.
# Needs nginx, openssl, curl and Node.js. Exits non-zero, naming the failed check, on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CONF="$ROOT/deploy/nginx/nginx.conf"

for tool in nginx openssl curl node; do
  command -v "$tool" >/dev/null || {
    echo "check-nginx: $tool is not installed" >&2
    exit 2
  }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/check-nginx.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILED=0
# json FILE EXPR: prints the JavaScript expression EXPR evaluated on the JSON in FILE (as `v`).
json() {
  node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(eval(process.argv[2]))' "$1" "$2" 2>/dev/null || echo "(not JSON)"
}
ok() { echo "ok   - $*"; }
bad() {
  echo "FAIL - $*" >&2
  FAILED=1
}
die() {
  echo "FAIL - $*" >&2
  for log in "$TMP"/bastion.err "$TMP"/nginx.out; do
    [ -s "$log" ] && { echo "--- $(basename "$log") (last lines)" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}

# CHECK_NGINX_MODE=rewrite forces the fallback (to check it as root).
MODE="${CHECK_NGINX_MODE:-}"
if [ -z "$MODE" ]; then
  if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then MODE=namespace; else MODE=rewrite; fi
fi
echo "# nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), mode: $MODE"

# Free loopback ports for Bastion and for nginx's two listeners.
read -r BASTION_PORT HTTP_PORT HTTPS_PORT < <(node -e '
  const net = require("node:net");
  const servers = [0, 1, 2].map(() => net.createServer().listen(0, "127.0.0.1"));
  Promise.all(servers.map((s) => new Promise((r) => s.on("listening", r)))).then(() => {
    console.log(servers.map((s) => s.address().port).join(" "));
    servers.forEach((s) => s.close());
  });')

# Moves the listeners to the free loopback ports and the upstreams to the running Bastion.
move_ports() {
  sed -e "s/^\(\s*server [^ ]*\):3000 /\1:$BASTION_PORT /" \
    -e "s/^\(\s*\)listen 80 /\1listen 127.0.0.1:$HTTP_PORT /" \
    -e "s/^\(\s*\)listen 443 ssl /\1listen 127.0.0.1:$HTTPS_PORT ssl /" \
    "$1"
}

# Throwaway TLS material where the config expects it (etc/tls stands for /etc/nginx/tls).
mkdir -p "$TMP/etc/tls" "$TMP/var-lib-nginx"
cp "$CONF" "$TMP/etc/nginx.conf"
cp /etc/nginx/mime.types "$TMP/etc/mime.types" 2>/dev/null || : >"$TMP/etc/mime.types"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
  -keyout "$TMP/etc/tls/privkey.pem" -out "$TMP/etc/tls/fullchain.pem" 2>/dev/null ||
  die "openssl could not make a self-signed certificate"

if [ "$MODE" = namespace ]; then
  { cat /etc/hosts; echo '127.0.0.1 bastion-1 bastion-2'; } >"$TMP/hosts"
  cp /etc/passwd "$TMP/passwd"
  cp /etc/group "$TMP/group"
  # The official image runs workers as "nginx"; give the namespace that user if the host has none.
  getent passwd nginx >/dev/null || echo 'nginx:x:101:101:nginx:/nonexistent:/usr/sbin/nologin' >>"$TMP/passwd"
  getent group nginx >/dev/null || echo 'nginx:x:101:' >>"$TMP/group"
  # A command prefixed with IN_PLACE runs with the copies mounted over the real paths, visible to it only
  # (unshare and sh exec into it, so a background one's $! is its own PID). nginx -t binds the listen
  # ports: it runs in a network namespace of its own too (`unshare -m -n`), so ports 80 and 443 are
  # checked as written without touching the host's.
  MOUNTS='
      set -e
      mount --bind "$1/hosts" /etc/hosts
      mount --bind "$1/passwd" /etc/passwd
      mount --bind "$1/group" /etc/group
      mount --bind "$1/etc" /etc/nginx
      if [ -d /var/lib/nginx ]; then mount --bind "$1/var-lib-nginx" /var/lib/nginx; fi
      shift
      exec "$@"'
  IN_PLACE=(unshare -m sh -c "$MOUNTS" sh "$TMP")
  IN_PLACE_ISOLATED=(unshare -m -n sh -c "$MOUNTS" sh "$TMP")
  NGINX_CONF=/etc/nginx/nginx.conf
else
  # Same file, rewritten: names to 127.0.0.1, /etc/nginx to the temp directory, the worker user to ours.
  IN_PLACE=()
  # Without root the user directive does not apply, and /dev/stdout may belong to another user.
  if [ "$(id -u)" = 0 ]; then USER_LINE="user root root;"; else USER_LINE=""; fi
  rewrite_paths() {
    sed -e "s#/etc/nginx/#$TMP/etc/#g" \
      -e 's/server bastion-[12]:/server 127.0.0.1:/' \
      -e "s/^user .*/$USER_LINE/" \
      -e "s#^pid .*#pid $TMP/nginx.pid;#" \
      -e "s#access_log /dev/stdout#access_log $TMP/access.log#" \
      -e "s#^http {#http {\n    client_body_temp_path $TMP/var-lib-nginx/body;\n    proxy_temp_path $TMP/var-lib-nginx/proxy;\n    fastcgi_temp_path $TMP/var-lib-nginx/fastcgi;\n    uwsgi_temp_path $TMP/var-lib-nginx/uwsgi;\n    scgi_temp_path $TMP/var-lib-nginx/scgi;#" \
      "$1"
  }
  rewrite_paths "$CONF" >"$TMP/etc/nginx.base.conf"
  # nginx -t binds the listen ports; without a namespace of its own, it checks them moved to free ones.
  move_ports "$TMP/etc/nginx.base.conf" >"$TMP/etc/nginx.conf"
  IN_PLACE_ISOLATED=()
  NGINX_CONF="$TMP/etc/nginx.conf"
fi

# --- 1. nginx -t ------------------------------------------------------------------------------------------
if "${IN_PLACE_ISOLATED[@]}" nginx -t -q -e stderr -c "$NGINX_CONF" -p "$TMP/" 2>"$TMP/nginx-t.out"; then
  ok "nginx -t accepts deploy/nginx/nginx.conf"
else
  cat "$TMP/nginx-t.out" >&2
  die "nginx -t rejects deploy/nginx/nginx.conf"
fi

# --- 2. Proxying to a real Bastion --------------------------------------------------------------------------
# The server as built (npm run build); built here only when dist/ is missing.
[ -f dist/cli.js ] || npm run build >/dev/null || die "npm run build failed"

# A workspace with a file to read and a tree big enough for grep_files to report progress several times.
mkdir -p "$TMP/ws/tree" "$TMP/data"
echo 'hello through nginx' >"$TMP/ws/hello.txt"
FILES=1200
node -e '
  const fs = require("node:fs");
  const [dir, n] = [process.argv[1], Number(process.argv[2])];
  const text = "nothing to see here\n".repeat(200);
  for (let i = 0; i < n; i++) fs.writeFileSync(`${dir}/f${i}.txt`, text);' "$TMP/ws/tree" "$FILES"

# Bastion's settings come from here only, whatever the caller's environment holds. The per-IP limit is low
# so that the X-Forwarded-For check below reaches it quickly.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^BASTION_' || true)
PER_IP=12
export BASTION_AUTH=api-key BASTION_TRUST_PROXY=true BASTION_LOG_LEVEL=warn BASTION_RATE_LIMIT_PER_IP=$PER_IP
KEY="$(node dist/cli.js keys create --client nginx-check --scopes files:read,agent --data-dir "$TMP/data" | tail -n 1)"
[[ "$KEY" == bst_* ]] || die "bastion keys create printed no key"

node dist/cli.js serve --host 127.0.0.1 --port "$BASTION_PORT" --workspace "$TMP/ws" --data-dir "$TMP/data" \
  >"$TMP/bastion.out" 2>"$TMP/bastion.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
  grep -qs 'serving MCP at' "$TMP/bastion.err" && break
  kill -0 "${PIDS[0]}" 2>/dev/null || die "Bastion exited at start"
  sleep 0.2
done
grep -qs 'serving MCP at' "$TMP/bastion.err" || die "Bastion did not start within 20 s"

# The same file, moved to the free ports: listeners on loopback, upstreams at the running Bastion.
[ -f "$TMP/etc/nginx.base.conf" ] || cp "$TMP/etc/nginx.conf" "$TMP/etc/nginx.base.conf"
move_ports "$TMP/etc/nginx.base.conf" | sed -e "s#^pid .*#pid $TMP/nginx.pid;#" >"$TMP/etc/nginx.run.conf"
[ "$(grep -c ":$BASTION_PORT " "$TMP/etc/nginx.run.conf")" = 2 ] || die "the upstream block no longer has two servers on port 3000"
grep -q "listen 127.0.0.1:$HTTP_PORT " "$TMP/etc/nginx.run.conf" || die "no 'listen 80' server to move"
grep -q "listen 127.0.0.1:$HTTPS_PORT ssl" "$TMP/etc/nginx.run.conf" || die "no 'listen 443 ssl' server to move"
RUN_CONF="${NGINX_CONF%/nginx.conf}/nginx.run.conf"

"${IN_PLACE[@]}" nginx -e stderr -c "$RUN_CONF" -p "$TMP/" -g 'daemon off;' >"$TMP/nginx.out" 2>&1 &
PIDS+=($!)
HTTP="http://127.0.0.1:$HTTP_PORT"
HTTPS="https://127.0.0.1:$HTTPS_PORT"
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "$HTTP/health/live" 2>/dev/null && break
  kill -0 "${PIDS[1]}" 2>/dev/null || die "nginx exited at start"
  sleep 0.2
done

# A failed connection prints status 000 and the check reports it, rather than stopping the script.
curl_status() { curl "$@" || true; }
CURL=(curl_status -sS --max-time 20 --cacert "$TMP/etc/tls/fullchain.pem")
MCP_HEADERS=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream'
  -H 'mcp-protocol-version: 2025-06-18')

# Health over plain HTTP; everything else is redirected to HTTPS with its method kept.
status="$("${CURL[@]}" -o "$TMP/body" -w '%{http_code}' "$HTTP/health/live")"
[ "$status" = 200 ] && [ "$(json "$TMP/body" v.status)" = ok ] &&
  ok "HTTP /health/live reaches Bastion (200)" || bad "HTTP /health/live: status $status, body $(cat "$TMP/body")"
headers="$("${CURL[@]}" -o /dev/null -D - -X POST "$HTTP/mcp")"
grep -qi '^HTTP/[0-9.]* 308' <<<"$headers" && grep -qi '^location: https://[^/]*/mcp' <<<"$headers" &&
  ok "HTTP /mcp is redirected to HTTPS (308)" || bad "HTTP /mcp is not redirected with 308: $headers"

# HTTPS: health, and the headers nginx adds.
status="$("${CURL[@]}" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$HTTPS/health/live")"
[ "$status" = 200 ] && ok "HTTPS /health/live (200)" || bad "HTTPS /health/live: status $status"
grep -qi '^strict-transport-security: max-age=' "$TMP/headers" &&
  ok "HTTPS answers carry Strict-Transport-Security" || bad "no Strict-Transport-Security header over HTTPS"

# tools/list with the key: the tools come back, and the request id the client chose is kept.
status="$("${CURL[@]}" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "${MCP_HEADERS[@]}" \
  -H "authorization: Bearer $KEY" -H 'x-request-id: nginx-check-1' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}' "$HTTPS/mcp")"
names="$(json "$TMP/body" 'v.result.tools.map((t) => t.name).join(" ")')"
if [ "$status" = 200 ] && [[ " $names " == *" read_text_file "* && " $names " == *" grep_files "* ]]; then
  ok "tools/list with the key returns the tools ($(wc -w <<<"$names") tools)"
else
  bad "tools/list with the key: status $status, body $(head -c 300 "$TMP/body")"
fi
grep -qi '^x-request-id: nginx-check-1' "$TMP/headers" &&
  ok "the client's x-request-id reaches Bastion and comes back" || bad "x-request-id was not passed through"

# Without the key: Bastion's 401 with its challenge, not something nginx made up.
status="$("${CURL[@]}" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "${MCP_HEADERS[@]}" \
  -d '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}' "$HTTPS/mcp")"
[ "$status" = 401 ] && grep -qi '^www-authenticate: Bearer' "$TMP/headers" &&
  ok "tools/list without a key is refused (401, WWW-Authenticate)" || bad "without a key: status $status"

# A tool call that reports progress is answered as Server-Sent Events: every event must arrive, parse,
# and the progress must arrive before the result in separate reads (streamed, not buffered to the end).
cat >"$TMP/sse-check.mjs" <<'EOF'
const [url, key, files] = process.argv.slice(2);
const response = await fetch(url, {
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
    authorization: `Bearer ${key}`,
  },
  body: JSON.stringify({
    jsonrpc: '2.0',
    id: 3,
    method: 'tools/call',
    params: { name: 'grep_files', arguments: { pattern: 'never-present', path: 'tree' }, _meta: { progressToken: 'p' } },
  }),
});
const type = response.headers.get('content-type') ?? '';
if (response.status !== 200 || !type.startsWith('text/event-stream')) {
  console.error(`status ${response.status}, content-type ${type}`);
  process.exit(1);
}
const decoder = new TextDecoder();
const events = [];
let buffer = '';
let reads = 0;
for await (const chunk of response.body) {
  reads += 1;
  buffer += decoder.decode(chunk, { stream: true });
  let end;
  while ((end = buffer.indexOf('\n\n')) >= 0) {
    const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    buffer = buffer.slice(end + 2);
    if (data) events.push({ read: reads, message: JSON.parse(data) });
  }
}
const progress = events.filter((e) => e.message.method === 'notifications/progress');
const result = events.find((e) => e.message.id === 3);
const problems = [];
if (buffer.trim()) problems.push('a truncated event at the end of the stream');
if (progress.length < 2) problems.push(`${progress.length} progress notifications`);
if (!result) problems.push('no result');
else {
  if (result.message.result?.isError) problems.push('the tool call failed');
  if (result.message.result?.structuredContent?.filesSearched !== Number(files))
    problems.push(`filesSearched ${result.message.result?.structuredContent?.filesSearched}, expected ${files}`);
  if (progress.length && progress[0].read >= result.read) problems.push('the progress arrived together with the result');
}
if (problems.length) {
  console.error(problems.join('; '));
  process.exit(1);
}
console.log(`${progress.length} progress events then the result, over ${reads} reads`);
EOF
if out="$(NODE_EXTRA_CA_CERTS="$TMP/etc/tls/fullchain.pem" node "$TMP/sse-check.mjs" "$HTTPS/mcp" "$KEY" "$FILES" 2>&1)"; then
  ok "a tools/call with progress streams through as SSE: $out"
else
  bad "SSE through nginx: $out"
fi

# A body over 4 MiB is refused by nginx itself, as JSON.
head -c $((5 * 1024 * 1024)) /dev/zero >"$TMP/large"
status="$("${CURL[@]}" -o "$TMP/body" -w '%{http_code}' "${MCP_HEADERS[@]}" -H "authorization: Bearer $KEY" \
  --data-binary @"$TMP/large" "$HTTPS/mcp")"
[ "$status" = 413 ] && [ "$(json "$TMP/body" v.error)" = payload_too_large ] &&
  ok "a body over 4 MiB gets 413 from nginx, as JSON" || bad "5 MiB body: status $status"

# Bastion trusts X-Forwarded-For from nginx; nginx must overwrite it, or a client could claim a new address
# on every request and never meet the per-IP limit. Every request below claims another address.
limited=0
for i in $(seq 1 $((PER_IP + 1))); do
  status="$("${CURL[@]}" -o /dev/null -w '%{http_code}' "${MCP_HEADERS[@]}" -H "authorization: Bearer $KEY" \
    -H "x-forwarded-for: 198.51.100.$i" -d '{"jsonrpc":"2.0","id":9,"method":"ping"}' "$HTTPS/mcp")"
  if [ "$status" = 429 ]; then
    limited=1
    break
  fi
done
[ "$limited" = 1 ] && ok "a forged X-Forwarded-For does not escape the per-IP limit (429 after $i requests)" ||
  bad "$((PER_IP + 1)) requests with forged X-Forwarded-For addresses were never limited"

if [ "$FAILED" != 0 ]; then
  for log in "$TMP"/bastion.err "$TMP"/nginx.out; do
    [ -s "$log" ] && { echo "--- $(basename "$log") (last lines)" >&2; tail -n 20 "$log" >&2; }
  done
  echo "check-nginx: FAILED" >&2
  exit 1
fi
echo "check-nginx: all checks passed"
