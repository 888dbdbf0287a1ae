#!/usr/bin/env bash
# Debian packages the browser test (tests/browser) and the grader's tests (tests/grader) need:
#   chromium         the headless browser that opens the built site
#   chromium-driver  chromedriver, through which Selenium drives it
#   fonts-noto-cjk   fonts with Chinese glyphs (the book gives Chinese terms)
#   bubblewrap       the sandbox in which `rnncourse grade` runs student code (tests/grader)
#   g++              the C++ compiler torch.compile's CPU back end (Inductor) builds its kernels
#                    with (the compile tests of tests/torch/test_conformance.py)
#   postgresql       PostgreSQL 15, the server tests/grader/test_postgres.py starts for a gradebook
# Installs only what is missing, with apt-get; does nothing if all are there.
set -euo pipefail

packages=(chromium chromium-driver fonts-noto-cjk bubblewrap g++ postgresql)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: ${packages[*]} already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing ${missing[*]}, and this is not a Debian-like system (no apt-get)." >&2
    echo "Install Chromium, its chromedriver, a CJK font, a C++ compiler and PostgreSQL by hand; without them the" >&2
    echo "browser and PostgreSQL tests are skipped and torch.compile's tests fail." >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${missing[*]}; installing them needs root. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "install-test-deps: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${missing[@]}"
