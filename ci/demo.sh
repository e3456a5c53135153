#!/usr/bin/env bash
# The main job: the gan_basics notebook at its demo preset on the embedded wrist watches (CPU, about 10 min).
# Outputs land in runs/gan_basics-demo/ (executed notebook, checkpoints, samples, metrics.json, log).
# Any other notebook or preset: bash ci/demo.sh NAME [--preset P] [-p KEY VALUE]...
source "$(dirname "$0")/setup.sh"
python -m ganlib run "${1:-gan_basics}" "${@:2}"
