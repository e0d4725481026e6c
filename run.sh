#!/usr/bin/env bash
# TCM Explorer's two entry points. Both create the virtual environment at .venv when it is
# missing and (re)install requirements.txt when it changed, then:
#   bash run.sh app  [streamlit options]   start the app on http://localhost:8501
#   bash run.sh app --classroom [...]       the same, with the Train form a lesson needs (TCM_CLASSROOM=1)
#   bash run.sh test [pytest options]      run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  local py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: TCM Explorer needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11)" >&2
    exit 2
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "Creating the virtual environment in .venv ..."
    "$py" -m venv .venv
  fi
  local want have
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  have=$(cat .venv/.requirements.sha256 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    echo "Installing requirements.txt into .venv (first time: a few minutes, about 3 GB) ..."
    .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
    echo "$want" > .venv/.requirements.sha256
  fi
}

# The browser tests drive Debian's Chromium through Playwright (playwright's own browser
# download needs the internet). Installed here when missing and we may; in CI (CI=true) the
# browser test fails rather than skips when there is no browser.
browser() {
  if [ -x "${TCM_CHROMIUM:-/usr/bin/chromium}" ]; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the browser test will not run" >&2
  else
    echo "note: no Chromium at /usr/bin/chromium (apt-get install chromium); the browser test will not run" >&2
  fi
}

case "${1:-}" in
  app)
    setup
    args=()
    for a in "${@:2}"; do
      if [ "$a" = "--classroom" ]; then export TCM_CLASSROOM=1; else args+=("$a"); fi
    done
    exec .venv/bin/python -m streamlit run app.py ${args[@]+"${args[@]}"}
    ;;
  test)
    setup
    browser
    exec .venv/bin/python -m pytest "${@:2}"
    ;;
  *)
    echo "usage: bash run.sh app|test [options]" >&2
    exit 2
    ;;
esac
