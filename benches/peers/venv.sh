#!/usr/bin/env bash
# Makes (once) the cached virtual environment of the peers, ~/.cache/llmkernel/peers-venv, from PyPI with the
# pinned versions of benches/peers/requirements.txt, and prints its python. A venv whose recorded requirements
# differ from the file is rebuilt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CACHE="${LLMKERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmkernel}"
VENV="$CACHE/peers-venv"
say() { printf '[peers] %s\n' "$*" >&2; }
if [ -x "$VENV/bin/python" ] && cmp -s "$here/requirements.txt" "$VENV/requirements.txt"; then
  echo "$VENV/bin/python"
  exit 0
fi
say "installing the peers into $VENV (SMG, LiteLLM and httpx from PyPI; a few minutes, once)"
# Built in place (a venv's scripts name its path); the copy of the requirements, written last, marks it complete.
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
cp "$here/requirements.txt" "$VENV/requirements.txt"
echo "$VENV/bin/python"
