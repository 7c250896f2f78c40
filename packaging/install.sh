#!/usr/bin/env bash
# Installs llmkernel for one user from a source checkout, without root:
#   binaries        -> $PREFIX/bin, stripped            (PREFIX defaults to ~/.local)
#   man pages       -> $PREFIX/share/man/man{1,5,8}
#   completions     -> $PREFIX/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}
#   example config  -> $PREFIX/share/doc/llmkernel/config.toml.example
#   user units      -> ~/.config/systemd/user (ExecStart pointed at $PREFIX/bin/llmkernel), not enabled
#
# Usage: packaging/install.sh --user [--prefix DIR] [--unit-dir DIR] [--from DIR]
#        packaging/install.sh --user --uninstall [--prefix DIR] [--unit-dir DIR]
# --from DIR (or LLMKERNEL_INSTALL_FROM) takes llmkernel and llmsh from DIR instead of building them
# (cargo build --release).
# What was installed is listed in $PREFIX/share/llmkernel/installed-files, which --uninstall reads;
# --uninstall also disables and stops the units and removes the links that enabling them made.
# Without a systemd user manager (a container, su, ssh without a session) the installer says so and
# how to run the kernel instead.
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
    # The help is the comment block at the top, up to the first line that is not a comment.
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$user" = 1 ] || { echo "install.sh: only per-user installs are supported: pass --user (see --help)" >&2; exit 2; }

manifest="$prefix/share/llmkernel/installed-files"
units=(llmkernel.socket llmkernel.service)

# Whether this user has a running systemd manager that `systemctl --user` can reach.
has_user_manager() {
  command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1
}

# The links `systemctl --user enable` made (e.g. sockets.target.wants/llmkernel.socket): removed
# with the units, so none is left dangling, even when no manager could disable them.
remove_enable_links() {
  local link
  for link in "$unit_dir"/*.wants/llmkernel.* "$unit_dir"/*.requires/llmkernel.*; do
    [ -L "$link" ] || continue
    rm -f -- "$link"
    rmdir -- "$(dirname "$link")" 2>/dev/null || true
  done
}

if [ "$mode" = uninstall ]; then
  [ -f "$manifest" ] || { echo "install.sh: nothing installed under $prefix (no $manifest)" >&2; exit 1; }
  if has_user_manager; then
    systemctl --user disable --now "${units[@]}" 2>/dev/null || true
  fi
  remove_enable_links
  while IFS= read -r f; do rm -f -- "$f"; done <"$manifest"
  rm -f -- "$manifest"
  rmdir -- "$prefix/share/llmkernel" "$prefix/share/doc/llmkernel" 2>/dev/null || true
  if has_user_manager; then
    systemctl --user daemon-reload 2>/dev/null || true
    systemctl --user reset-failed "${units[@]}" 2>/dev/null || true
  fi
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
put() { # MODE SRC DEST [install options]
  install -D -m "$1" "${@:4}" "$2" "$3"
  installed+=("$3")
}
# Binaries without their symbols and debug information (about a tenth of the size).
strip_opt=()
if command -v strip >/dev/null; then
  strip_opt=(-s)
else
  echo "note: strip(1) is not installed (binutils); the binaries are installed unstripped" >&2
fi
put 0755 "$from/llmkernel" "$prefix/bin/llmkernel" "${strip_opt[@]}"
put 0755 "$from/llmsh" "$prefix/bin/llmsh" "${strip_opt[@]}"
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
for unit in "${units[@]}"; do
  sed "s#/usr/bin/llmkernel#$prefix/bin/llmkernel#g" "$root/systemd/$unit" >"$unit_dir/$unit"
  chmod 0644 "$unit_dir/$unit"
  installed+=("$unit_dir/$unit")
done
mkdir -p "$(dirname "$manifest")"
printf '%s\n' "${installed[@]}" >"$manifest"
echo "installed llmkernel into $prefix (units in $unit_dir, not enabled)"
if has_user_manager; then
  systemctl --user daemon-reload 2>/dev/null || true
  echo "start it on first use with: systemctl --user enable --now llmkernel.socket"
else
  echo "note: there is no systemd user manager here (systemctl --user cannot reach one), so the units"
  echo "cannot be started now. Run the kernel yourself instead:"
  echo "  $prefix/bin/llmkernel --daemon [--backend URL]"
  echo "or, from a login with a systemd session: systemctl --user enable --now llmkernel.socket"
fi
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: $prefix/bin is not on your PATH" ;; esac
