#!/usr/bin/env python3
"""json_check.py FILE EXPR...: loads FILE (JSON) as `d` and requires every Python expression
EXPR to be true; prints each with its value. Exits 1 when one is false."""
import json
import sys

d = json.load(open(sys.argv[1]))
ok = True
for expr in sys.argv[2:]:
    value = eval(expr, {"d": d})
    print(f"json_check: {expr} -> {value}")
    ok = ok and bool(value)
sys.exit(0 if ok else 1)
