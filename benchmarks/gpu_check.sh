#!/usr/bin/env bash
# The GPU check of issue 20 (`make gpu-check`): Kiln on one NVIDIA GPU (an H100 is the
# intended machine), in at most 8 minutes (GPU_CHECK_SECONDS, default 480):
#   1. the CUDA tests (pytest tests/test_targets.py tests/test_device_labels.py -k cuda),
#   2. BERT-base 1x128 and ResNet-50 1x3x224x224 under kiln.compile(target="cuda") against
#      eager and Inductor on the same GPU (interleaved medians, torch.cuda.synchronize,
#      max abs error against eager),
#   3. gpu_check.json and gpu_check.md in --out DIR, else $OUT when set, else
#      benchmarks/results.
# The steps are benchmarks/gpu_check.py; arguments are passed on to it (--help lists them).
#
# NEEDS:
#   - an NVIDIA GPU and its driver (nvidia-smi, libcuda.so). Without one this stops AT ONCE,
#     before installing or compiling anything, with exit status 2.
#   - a CUDA build of torch==2.13.0 (the version pyproject.toml pins). The .venv that
#     `make env` builds holds torch's CPU build, with which this stops at once too (exit 2).
#     Either point KILN_GPU_PYTHON at a Python that has a CUDA torch and Kiln's other pinned
#     packages (pip install -e '.[test,bench]'), or set KILN_CUDA_TORCH_INDEX to a PyTorch
#     wheel index (e.g. https://download.pytorch.org/whl/cu128, matching the driver) and this
#     installs torch==2.13.0 from it into .venv. Both need network access to PyTorch's index
#     or a local mirror; transformers (BERT-base, ResNet-50 configs) comes with '.[test]'.
#
# Exit status: 0 all steps ran, no test failed, Kiln ran both models on the GPU; 1 some step
# failed or ran out of time (results are written anyway); 2 no usable GPU; 3 setup failed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
limit=${GPU_CHECK_SECONDS:-480}

fail() { echo "gpu_check: $2" >&2; exit "$1"; }
left() { echo $((limit - (SECONDS - start))); }

# 1. A GPU at all? (before anything is installed or compiled)
command -v nvidia-smi >/dev/null 2>&1 ||
    fail 2 "no NVIDIA GPU here (nvidia-smi not found): run this on a machine with an NVIDIA GPU"
gpus=$(timeout 30 nvidia-smi -L 2>&1) ||
    fail 2 "no NVIDIA GPU here (nvidia-smi failed: ${gpus%%$'\n'*}): run this on a machine with an NVIDIA GPU"
grep -q '^GPU ' <<<"$gpus" ||
    fail 2 "no NVIDIA GPU here (nvidia-smi lists none): run this on a machine with an NVIDIA GPU"
echo "gpu_check: ${gpus%%$'\n'*}" >&2

# 2. The Python that runs Kiln: KILN_GPU_PYTHON, else .venv (made or brought up to date by make env)
if [[ -n ${KILN_GPU_PYTHON:-} ]]; then
    py=$KILN_GPU_PYTHON
else
    py=.venv/bin/python
    timeout "$(( $(left) < 240 ? $(left) : 240 ))" make env ||
        fail 3 "could not set up .venv with 'make env' (no network? set KILN_GPU_PYTHON to a ready Python)"
fi
[[ -x $py ]] || command -v "$py" >/dev/null 2>&1 || fail 3 "no Python at '$py'"

cuda_torch() { timeout 120 "$py" -c 'import torch, sys; sys.exit(torch.version.cuda is None)' 2>/dev/null; }
if [[ -n ${KILN_CUDA_TORCH_INDEX:-} ]] && ! cuda_torch; then
    pin=$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')
    echo "gpu_check: installing $pin from $KILN_CUDA_TORCH_INDEX into $py's environment" >&2
    "$py" -m pip uninstall --quiet -y torch &&
        timeout "$(( $(left) < 300 ? $(left) : 300 ))" \
            "$py" -m pip install --quiet "$pin" --index-url "$KILN_CUDA_TORCH_INDEX" ||
        fail 3 "could not install a CUDA build of $pin from $KILN_CUDA_TORCH_INDEX"
fi

# 3. The steps; the Python part checks torch.cuda.is_available() and IREE's cuda driver first
# and stops at once (exit 2) without them.
budget=$(( $(left) - 15 ))
(( budget >= 60 )) || fail 1 "only $(left) s of the ${limit} s left after setup: not enough to run the check"
timeout --kill-after=10 "$(( budget + 10 ))" "$py" benchmarks/gpu_check.py --budget "$budget" "$@"
