"""Shared by the client scripts: checks that print `ok - name` and stop
at the first failure, or with CLIENT_TESTS_KEEP_GOING=1 record every
failure and report them at the end (the exit status is still 1).
"""

import os
import sys

# CLIENT_TESTS_KEEP_GOING=1 reports every failing check instead of stopping
# at the first one (the exit status is still 1 when any check failed).
KEEP_GOING = os.environ.get("CLIENT_TESTS_KEEP_GOING") == "1"
FAILURES = []
sys.stdout.reconfigure(line_buffering=True)


class CheckFailed(Exception):
    pass


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    if not KEEP_GOING:
        sys.exit(1)
    FAILURES.append(msg)
    raise CheckFailed(msg)


def check(name, got, expected):
    if got != expected:
        try:
            fail(f"{name}: expected {expected!r}, got {got!r}")
        except CheckFailed:
            return  # keep going: the next checks of this test still run
    print(f"ok - {name}")


def unexpected(where, e):
    """An exception a check did not expect: fails (or, keep-going, records)."""
    if isinstance(e, CheckFailed):
        return
    try:
        fail(f"{where}: unexpected {type(e).__module__}.{type(e).__name__}: {e}")
    except CheckFailed:
        pass


def finish(client):
    if FAILURES:
        print(f"FAILED: {client}: {len(FAILURES)} failing checks", file=sys.stderr)
        sys.exit(1)
    print(f"ALL PASSED: {client}")
