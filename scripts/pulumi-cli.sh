#!/usr/bin/env bash
# Builds the Pulumi CLI from its Go modules, for machines where it is not installed and cannot be
# downloaded (CI, our development machines). Users install the CLI the official way (README).
#
# Prints the folder holding `pulumi` and the launchers on its last line: put it on PATH.
# The binaries are cached outside the repository, in
# ${ML_BUDGETS_CACHE:-~/.cache/ml-budgets}/pulumi-cli/<version>/bin: a second run takes a moment.
#
# What is built, and why these versions:
# * the CLI, github.com/pulumi/pulumi/pkg/v3/cmd/pulumi at PULUMI_CLI_VERSION. Our SDK pin is
#   pulumi 3.272.0 (requirements.txt), but the Go module proxy refuses pkg/v3 v3.272.0 and
#   v3.273.0 ("This module version is not available"); v3.274.1 is the nearest release it serves.
#   A CLI newer than the SDK is the supported pairing (the CLI speaks every older SDK's protocol).
#   `go install module@version` refuses modules whose go.mod has `replace` lines, so the CLI is
#   built from a throwaway module that requires it.
# * NOT the Python language host (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3):
#   the proxy serves no version of it (its version list answers 403 "This module version is not
#   available", and so does the pseudo-version of a release commit). Without it the CLI runs a
#   Python program only when the program's own process serves it (the Automation API's inline
#   programs: `pulumi up --client=<address>`), and a Python policy pack only as an executable
#   (`--policy-pack <pack>/pulumi-analyzer-policy-python`, see below).
# * the launchers the CLI's distribution ships (written here, a few lines each):
#   pulumi-resource-pulumi-python  starts the dynamic provider server (`python -m pulumi.dynamic`)
#                                  in the project folder, which the CLI runs plugins in;
#   pulumi-analyzer-policy-python  starts a Python policy pack's Analyzer (`python -m pulumi.policy
#                                  <engine> <pack folder>`) with the pack's virtualenv; link it into
#                                  the pack folder and pass that link to --policy-pack.
set -euo pipefail

PULUMI_CLI_VERSION=v3.274.1
CACHE="${ML_BUDGETS_CACHE:-$HOME/.cache/ml-budgets}/pulumi-cli/$PULUMI_CLI_VERSION"
BIN="$CACHE/bin"

write_launchers() {
    cat >"$BIN/pulumi-resource-pulumi-python" <<'LAUNCHER'
#!/bin/sh
# The dynamic provider server of the Pulumi Python SDK, run by the Python that runs the program:
# the virtualenv the CLI names (PULUMI_RUNTIME_VIRTUALENV), else PULUMI_PYTHON_CMD, else python3.
if [ -n "${PULUMI_RUNTIME_VIRTUALENV:-}" ]; then
    case $PULUMI_RUNTIME_VIRTUALENV in /*) ;; *) PULUMI_RUNTIME_VIRTUALENV=$PWD/$PULUMI_RUNTIME_VIRTUALENV ;; esac
    exec "${PULUMI_RUNTIME_VIRTUALENV%/}/bin/python" -u -m pulumi.dynamic "$@"
fi
exec "${PULUMI_PYTHON_CMD:-python3}" -u -m pulumi.dynamic "$@"
LAUNCHER
    cat >"$BIN/pulumi-analyzer-policy-python" <<'LAUNCHER'
#!/bin/sh
# A Python policy pack's Analyzer. Called through a link in the pack folder (the CLI passes the
# engine's address); runs in the pack folder with the pack's virtualenv (PulumiPolicy.yaml's
# `virtualenv`, here ./venv), else PULUMI_PYTHON_CMD, else python3.
pack=$(cd "$(dirname "$0")" && pwd)
cd "$pack" || exit 1
python=${PULUMI_PYTHON_CMD:-python3}
[ -x "$pack/venv/bin/python" ] && python=$pack/venv/bin/python
exec "$python" -u -m pulumi.policy "$@" "$pack"
LAUNCHER
    chmod +x "$BIN/pulumi-resource-pulumi-python" "$BIN/pulumi-analyzer-policy-python"
}

if [ -x "$BIN/pulumi" ] && [ "$("$BIN/pulumi" version)" = "$PULUMI_CLI_VERSION" ]; then
    write_launchers  # cheap, and keeps them in step with this script
    echo "$BIN"
    exit 0
fi

command -v go >/dev/null || { echo "pulumi-cli.sh: Go is needed to build the Pulumi CLI (apt-get install golang-go, or go.dev)" >&2; exit 1; }
mkdir -p "$BIN"
module=$(mktemp -d)
trap 'rm -rf "$module"' EXIT
started=$(date +%s)
(
    cd "$module"
    export GOFLAGS=-buildvcs=false
    go mod init ml-budgets/pulumi-cli >/dev/null 2>&1
    go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_CLI_VERSION" >&2
    go build \
        -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_CLI_VERSION" \
        -o "$BIN/pulumi.partial" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
)
mv "$BIN/pulumi.partial" "$BIN/pulumi"
write_launchers
echo "pulumi-cli.sh: built pulumi $("$BIN/pulumi" version) in $(($(date +%s) - started)) s" >&2
echo "$BIN"
