#!/usr/bin/env python3
"""The Python equivalent of the trivial checker: every action is `ok` at once.

This is how ForcAD-, FAUST- and HackerDom-style platforms run checkers: one process per
action. The benchmark spawns it once per action to compare with the sandbox.
"""
import json
import sys


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else "check"
    print(json.dumps({"action": action, "status": "ok", "public": "", "private": []}))
    return 101  # ForcAD's exit code for OK


if __name__ == "__main__":
    sys.exit(main())
