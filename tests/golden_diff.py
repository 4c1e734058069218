"""What changed in the golden dumps since a git revision (default HEAD): number formats only, or formulas and values too.

    python tests/golden_diff.py [REV]

Run it after `python tests/golden_dump.py`: an intended change of presentation shows number-format changes
and "formula/value changes: 0" (the Introduction's bullets, once moved into one cell, are counted apart).
"""
import gzip
import json
import subprocess
import sys
from pathlib import Path
names = [p.name[:-8] for p in sorted(Path("tests/golden").glob("*.json.gz"))]
total = 0
REF = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
for name in names:
    old = json.loads(gzip.decompress(subprocess.run(["git", "show", f"{REF}:tests/golden/{name}.json.gz"], capture_output=True, check=True).stdout))
    new = json.loads(gzip.decompress(Path(f"tests/golden/{name}.json.gz").read_bytes()))
    o = {(c[0], c[1]): c for c in old["cells"] if c[0] != "_sheetsgd"}
    n = {(c[0], c[1]): c for c in new["cells"] if c[0] != "_sheetsgd"}
    fmt = moved = other = 0
    new_intro_a = {c[3] for k, c in n.items() if k[0] == "Introduction" and k[1].startswith("A")}
    for k in set(o) | set(n):
        a, b = o.get(k), n.get(k)
        if a and b and a[2] == b[2] and a[3] == b[3]:
            fmt += a[4] != b[4]; continue
        # the Introduction's bullets: "•" in A and its text in B became "• text" in A
        if k[0] == "Introduction" and (a and a[3] == "•" or a is None and b and str(b[3]).startswith("• ")
                                       or b is None and a and "• " + str(a[3]) in new_intro_a):
            moved += 1; continue
        other += 1; print(name, k, a and a[2:], b and b[2:])
    print(f"{name}: {fmt} number-format changes, {moved} bullet cells moved, {other} other changes; names same {old['names'] == new['names']}, sheets same {old['sheets'] == new['sheets']}")
    total += other
print("formula/value changes:", total)
