#!/usr/bin/env bash
# The test command: unit tests, every notebook headless at the smoke preset, and nbval on the
# stored notebooks (run at the smoke preset, checking the cells marked # NBVAL_CHECK_OUTPUT).
source "$(dirname "$0")/setup.sh"
export GANLIB_PRESET=smoke                 # the stored notebooks' parameters cell reads this default
export GANLIB_OUT_DIR="$(mktemp -d)/nbval" # and this one, so nbval never resumes a real run
python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
