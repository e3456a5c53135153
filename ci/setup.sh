# Sourced by ci/demo.sh and ci/test.sh: make .venv with the pinned CPU-runnable torch pair and ganlib.
# Re-running is cheap: it reinstalls only when requirements.txt or ci/constraints.txt changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.ganlib-installed
want=$(cat requirements.txt ci/constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing requirements into .venv (first run: a few minutes)..."
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -c ci/constraints.txt
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# Never reach wandb's servers by accident; notebooks default to wandb_mode="disabled" too.
export WANDB_MODE="${WANDB_MODE:-disabled}"
export MPLBACKEND=Agg
