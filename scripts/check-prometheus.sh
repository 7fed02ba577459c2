#!/usr/bin/env bash
# Checks the monitoring files with promtool: both Prometheus configs, the alert rules, and the rules' unit
# tests. Exits non-zero if any check fails. Needs promtool (Debian: apt-get install prometheus).
#
#   scripts/check-prometheus.sh
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/monitoring/prometheus"
configs=(prometheus.yml prometheus.kubernetes.yml)

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: install Prometheus (Debian: apt-get install prometheus)" >&2
  exit 2
fi

# `promtool check config` insists that every file a config names exists: the rule file
# (/etc/prometheus/alerts.yml) and the scrape token (credentials_file). Those paths exist only inside the
# Prometheus container or pod, so each config is checked from a copy in a temporary directory with these
# paths pointed at a copy of alerts.yml and a placeholder token. Nothing else in the copy changes.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$dir/alerts.yml" "$tmp/alerts.yml"
printf 'placeholder-token\n' >"$tmp/token"

# Debian's promtool is built without Kubernetes discovery and rejects kubernetes_sd_configs as an unknown
# field. With such a promtool, the Kubernetes config is checked with that block swapped for a static target,
# so everything else in it (rule files, authorization, relabelling) is still checked; the block itself is
# checked by test/deploy/monitoring.spec.ts. An upstream promtool checks the file as it is.
printf 'scrape_configs:\n  - job_name: probe\n    kubernetes_sd_configs:\n      - role: pod\n' >"$tmp/probe.yml"
if promtool check config "$tmp/probe.yml" >/dev/null 2>&1; then
  kubernetes_sd=yes
else
  kubernetes_sd=no
fi

# Replaces a `kubernetes_sd_configs:` block (the key and every deeper-indented line after it) with a
# static_configs entry at the same indentation.
without_kubernetes_sd() {
  awk '
    skipping && (match($0, /[^ ]/) - 1) > indent { next }
    { skipping = 0 }
    /^[ ]*kubernetes_sd_configs:/ {
      indent = match($0, /[^ ]/) - 1
      printf "%*sstatic_configs: [{ targets: [\"bastion-pod:3000\"] }]\n", indent, ""
      skipping = 1
      next
    }
    { print }
  '
}

failed=0
run() {
  echo "+ $*"
  if ! "$@"; then
    failed=1
  fi
}

for config in "${configs[@]}"; do
  sed -E \
    -e "s#/etc/prometheus/alerts\.yml#$tmp/alerts.yml#" \
    -e "s#(credentials_file:[[:space:]]*).*#\1$tmp/token#" \
    "$dir/$config" >"$tmp/$config"
  if [ "$kubernetes_sd" = no ] && grep -q 'kubernetes_sd_configs:' "$tmp/$config"; then
    echo "NOTE: this promtool lacks Kubernetes discovery: $config is checked with kubernetes_sd_configs replaced"
    without_kubernetes_sd <"$tmp/$config" >"$tmp/$config.static"
    mv "$tmp/$config.static" "$tmp/$config"
  fi
  if ! grep -q "$tmp/alerts.yml" "$tmp/$config"; then
    echo "$config: rule_files does not name /etc/prometheus/alerts.yml" >&2
    failed=1
  fi
  run promtool check config "$tmp/$config"
done

run promtool check rules "$dir/alerts.yml"
run promtool test rules "$dir/alerts.test.yml"

if [ "$failed" -ne 0 ]; then
  echo "Prometheus checks FAILED" >&2
  exit 1
fi
echo "Prometheus checks passed"
