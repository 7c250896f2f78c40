#!/usr/bin/env bash
# Installs llmkernel for one user from a source checkout, without root:
#   binaries        -> $PREFIX/bin                      (PREFIX defaults to ~/.local)
#   man pages       -> $PREFIX/share/man/man{1,5,8}
#   completions     -> $PREFIX/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}
#   example config  -> $PREFIX/share/doc/llmkernel/config.toml.example
#   user units      -> ~/.config/systemd/user (ExecStart pointed at $PREFIX/bin/llmkernel), not enabled
#
# Usage: packaging/install.sh --user [--prefix DIR] [--unit-dir DIR] [--from DIR]
#        packaging/install.sh --user --uninstall [--prefix DIR] [--unit-dir DIR]
# --from DIR (or LLMKERNEL_INSTALL_FROM) takes llmkernel and llmsh from DIR instead of building them
# (cargo build --release).
# What was installed is listed in $PREFIX/share/llmkernel/installed-files, which --uninstall reads.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix="$HOME/.local"
unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
from="${LLMKERNEL_INSTALL_FROM:-}"
mode=install
user=0
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=1 ;;
    --uninstall) mode=uninstall ;;
    --prefix) prefix=$2; shift ;;
    --unit-dir) unit_dir=$2; shift ;;
    --from) from=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$user" = 1 ] || { echo "install.sh: only per-user installs are supported: pass --user (see --help)" >&2; exit 2; }

manifest="$prefix/share/llmkernel/installed-files"

if [ "$mode" = uninstall ]; then
  [ -f "$manifest" ] || { echo "install.sh: nothing installed under $prefix (no $manifest)" >&2; exit 1; }
  if command -v systemctl >/dev/null && systemctl --user is-active --quiet llmkernel.service 2>/dev/null; then
    systemctl --user stop llmkernel.socket llmkernel.service 2>/dev/null || true
  fi
  while IFS= read -r f; do rm -f -- "$f"; done <"$manifest"
  rm -f -- "$manifest"
  rmdir -- "$prefix/share/llmkernel" "$prefix/share/doc/llmkernel" 2>/dev/null || true
  command -v systemctl >/dev/null && systemctl --user daemon-reload 2>/dev/null || true
  echo "uninstalled llmkernel from $prefix and $unit_dir"
  exit 0
fi

if [ -z "$from" ]; then
  echo "building release binaries (cargo build --release)"
  (cd "$root" && cargo build --release --locked --quiet)
  from="$root/target/release"
fi
for b in llmkernel llmsh; do
  [ -x "$from/$b" ] || { echo "install.sh: $from/$b is missing" >&2; exit 1; }
done

installed=()
put() { # MODE SRC DEST
  install -D -m "$1" "$2" "$3"
  installed+=("$3")
}
put 0755 "$from/llmkernel" "$prefix/bin/llmkernel"
put 0755 "$from/llmsh" "$prefix/bin/llmsh"
put 0644 "$root/man/llmsh.1" "$prefix/share/man/man1/llmsh.1"
put 0644 "$root/man/llmkernel.8" "$prefix/share/man/man8/llmkernel.8"
put 0644 "$root/man/llmkernel.toml.5" "$prefix/share/man/man5/llmkernel.toml.5"
put 0644 "$root/packaging/completions/llmsh.bash" "$prefix/share/bash-completion/completions/llmsh"
put 0644 "$root/packaging/completions/llmkernel.bash" "$prefix/share/bash-completion/completions/llmkernel"
put 0644 "$root/packaging/completions/_llmsh" "$prefix/share/zsh/site-functions/_llmsh"
put 0644 "$root/packaging/completions/_llmkernel" "$prefix/share/zsh/site-functions/_llmkernel"
put 0644 "$root/packaging/completions/llmsh.fish" "$prefix/share/fish/vendor_completions.d/llmsh.fish"
put 0644 "$root/packaging/completions/llmkernel.fish" "$prefix/share/fish/vendor_completions.d/llmkernel.fish"
put 0644 "$root/packaging/config.toml.example" "$prefix/share/doc/llmkernel/config.toml.example"
put 0644 "$root/LICENSE" "$prefix/share/doc/llmkernel/LICENSE"
mkdir -p "$unit_dir"
for unit in llmkernel.service llmkernel.socket; do
  sed "s#/usr/bin/llmkernel#$prefix/bin/llmkernel#g" "$root/systemd/$unit" >"$unit_dir/$unit"
  chmod 0644 "$unit_dir/$unit"
  installed+=("$unit_dir/$unit")
done
mkdir -p "$(dirname "$manifest")"
printf '%s\n' "${installed[@]}" >"$manifest"
command -v systemctl >/dev/null && systemctl --user daemon-reload 2>/dev/null || true
echo "installed llmkernel into $prefix (units in $unit_dir, not enabled)"
echo "start it on first use with: systemctl --user enable --now llmkernel.socket"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: $prefix/bin is not on your PATH" ;; esac
