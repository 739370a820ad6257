#!/usr/bin/env bash
# Installs the Debian ZooKeeper server package (and a headless JRE if no
# `java` is on PATH) needed by the integration tests in
# integration/testserver. Does nothing when both are already present.
#
# Usage: sudo scripts/install-zookeeper.sh
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

jar=/usr/share/java/zookeeper.jar

have_java() { command -v java >/dev/null 2>&1; }

if [[ -f "$jar" ]] && have_java; then
	exit 0
fi

pkgs=(zookeeper)
if ! have_java; then
	pkgs+=(default-jre-headless)
fi

apt_install "$([[ -f "$jar" ]] || echo " $jar")$(have_java || echo " java")" "${pkgs[@]}"

if [[ ! -f "$jar" ]] || ! have_java; then
	echo "install-zookeeper.sh: installed ${pkgs[*]} but $jar or java is still missing" >&2
	exit 1
fi
