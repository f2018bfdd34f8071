# Sourced by the scripts: make (once) and enter the project's virtual environment.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${P2PSWARM_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$venv/.p2pswarm-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet -e "$root[test]"
  touch "$stamp"
fi
if [ -f "$root/tests/interop/package-lock.json" ] && command -v npm >/dev/null \
   && [ ! -d "$root/tests/interop/node_modules" ]; then
  (cd "$root/tests/interop" && npm ci --silent --no-audit --no-fund)
fi
export PATH="$venv/bin:$PATH"
cd "$root"
