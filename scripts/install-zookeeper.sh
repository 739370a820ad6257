#!/usr/bin/env bash
# Installs the Debian ZooKeeper server package (and a headless JRE if no
# `java` is on PATH) needed by the integration tests in
# integration/testserver. Does nothing when both are already present.
#
# Usage: sudo scripts/install-zookeeper.sh
set -euo pipefail

jar=/usr/share/java/zookeeper.jar

have_java() { command -v java >/dev/null 2>&1; }

if [[ -f "$jar" ]] && have_java; then
	exit 0
fi

pkgs=(zookeeper)
if ! have_java; then
	pkgs+=(default-jre-headless)
fi

if [[ "$(id -u)" -ne 0 ]]; then
	{
		echo "install-zookeeper.sh: missing:$([[ -f "$jar" ]] || echo " $jar")$(have_java || echo " java")"
		echo "Run as root:"
		echo "  sudo $0"
		echo "or:"
		echo "  sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends ${pkgs[*]}'"
	} >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${pkgs[@]}"

if [[ ! -f "$jar" ]] || ! have_java; then
	echo "install-zookeeper.sh: installed ${pkgs[*]} but $jar or java is still missing" >&2
	exit 1
fi
