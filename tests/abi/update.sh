#!/usr/bin/env bash
# Record the ABI of this tree as the baseline the `abi` test compares with
# (tests/abi/libwsfwd.abi). Run it at a release, or after a deliberate break that changed the
# SONAME, and commit the file. Needs abigail-tools, cmake and gcc. See docs/api.md, "ABI".
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/check.sh" "$(dirname "${BASH_SOURCE[0]}")/../.." --update
