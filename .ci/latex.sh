#!/usr/bin/env bash
# pdflatex with booktabs, for the test that compiles the report's LaTeX tables.
# Installs the Debian TeX Live packages with apt-get when pdflatex is missing (CI runs as root).
set -euo pipefail
if command -v pdflatex >/dev/null && kpsewhich booktabs.sty >/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        texlive-latex-base texlive-latex-recommended >/dev/null
else
    echo "latex.sh: no pdflatex and cannot apt-get install it" >&2
    exit 1
fi
