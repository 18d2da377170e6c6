#!/usr/bin/env python3
"""Derive pkg/votegen/data/2024-president.csv from MEDSL's state-level 2024
presidential returns.

Usage:
    git clone https://github.com/MEDSL/2024-elections-official
    python3 scripts/election2024/derive.py \
        2024-elections-official/2024-president-state.csv > pkg/votegen/data/2024-president.csv

Each of votestream's six candidates gets, per state, the sum of every row
whose candidate names them, written-in or on the ballot (MEDSL spells some
write-in rows "CORNEL WEST AND MELINA ABDULLAH" and the like). A state with
no such row gets 0 and is listed in the header: the source gives no figure
there. The script checks the national totals it can against FEC's official
"Federal Elections 2024" figures for Trump and Harris and fails if they
differ.
"""
import csv
import re
import sys

# votestream's candidates (pkg/vote), with a pattern matching MEDSL's names.
CANDIDATES = [
    ("trump", re.compile(r"\bTRUMP\b")),
    ("harris", re.compile(r"^HARRIS, KAMALA\b")),
    ("west", re.compile(r"\bWEST\b")),
    ("stein", re.compile(r"\bSTEIN\b")),
    ("oliver", re.compile(r"\bOLIVER\b")),
    ("de_la_cruz", re.compile(r"\bDE LA CRUZ\b")),
]
# FEC, Federal Elections 2024, national popular vote.
FEC = {"trump": 77302580, "harris": 75017613}
# pkg/vote's order: the 50 states alphabetically by name, DC last.
ORDER = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO "
         "MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC").split()


def main(path):
    votes = {s: {c: 0 for c, _ in CANDIDATES} for s in ORDER}
    found = {s: set() for s in ORDER}
    version = set()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["office"] != "US PRESIDENT" or row["stage"] != "GEN":
                continue
            s, name = row["state_po"], " ".join(row["candidate"].split())
            version.add(row["version"])
            for c, pat in CANDIDATES:
                if pat.search(name):
                    votes[s][c] += int(row["votes"])
                    found[s].add(c)
    for c, want in FEC.items():
        got = sum(votes[s][c] for s in ORDER)
        if got != want:
            sys.exit(f"{c}: {got} nationally, FEC says {want}")
    out = csv.writer(sys.stdout, lineterminator="\n")
    print("# Certified 2024 presidential votes of votestream's six candidates, per state and DC.")
    print("# Source: MIT Election Data and Science Lab (MEDSL), 2024-president-state.csv of")
    print("# https://github.com/MEDSL/2024-elections-official (commit f67c9de44cc3, data version "
          + ",".join(sorted(version)) + "),")
    print("# derived by scripts/election2024/derive.py: per state, the sum of every row naming the")
    print("# candidate, on the ballot or written in. National Trump and Harris totals equal the FEC's")
    print("# official figures (77,302,580 and 75,017,613).")
    for c, _ in CANDIDATES:
        missing = [s for s in ORDER if c not in found[s]]
        if missing:
            print(f"# No figure in the source for {c} in: {' '.join(missing)} (0 here).")
    out.writerow(["state"] + [c for c, _ in CANDIDATES])
    for s in ORDER:
        out.writerow([s] + [votes[s][c] for c, _ in CANDIDATES])
    tot = ["total"] + [sum(votes[s][c] for s in ORDER) for c, _ in CANDIDATES]
    print("# National totals: " + " ".join(f"{c}={v}" for (c, _), v in zip(CANDIDATES, tot[1:])))


if __name__ == "__main__":
    main(sys.argv[1])
