#!/usr/bin/env python3
"""Cross-checks docs/security.md against the tests, so the table of checks cannot drift from them
(run by security-doc.test in every ctest run).

In every table of the document that has a `unit`, `lit` or `test` column:
  * each backticked name in a lit column is a case of the malformed corpus: a folder
    Inputs/<name> and a lit file here with a RUN line using --check-prefix=<NAME> and at least one
    `<NAME>:` check line;
  * each backticked name in a unit column is a GoogleTest test of a qlc-unit-* binary of the build
    (`Suite.Test`, or only the last part of a parameterized name: `Rejected/<Case>` -> `<Case>`);
  * in a `test` column, a name that is a corpus case is checked as lit, any other as unit;
  * a cell without a name must say why: `—` followed by a reason, e.g. `— (API only: ...)` (names
    in the reason are not checked);
and every case folder under Inputs/ is named in some lit column (no undocumented case).

    check_security_doc.py DOC INPUTS_DIR LIT_DIR BIN_DIR   (or the path of a binary in it)
"""
import glob
import os
import re
import subprocess
import sys


def tables(doc):
    """Yields (line number, header cells, row cells) for each data row of each markdown table."""
    header = None
    for no, line in enumerate(open(doc, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
        elif all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        else:
            yield no, header, cells


def gtest_names(bin_dir):
    names = set()
    binaries = sorted(glob.glob(os.path.join(bin_dir, "qlc-unit-*")))
    if not binaries:
        sys.exit(f"check_security_doc: no qlc-unit-* binary in {bin_dir} (build the unit tests)")
    for b in binaries:
        out = subprocess.run([b, "--gtest_list_tests"], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            sys.exit(f"check_security_doc: {b} --gtest_list_tests failed:\n{out.stderr}")
        suite = None
        for line in out.stdout.splitlines():
            if not line.strip() or line.startswith("Running main()"):
                continue
            if not line.startswith(" "):
                suite = line.split("#")[0].strip()
            elif suite:
                names.add(suite + line.split("#")[0].strip())
    return names


def unit_exists(token, names):
    # "A.B" names a suite and test (a parameterized suite may carry a prefix "Corpus/");
    # a bare name is a test or the last part of a parameterized test.
    for n in names:
        if "." in token:
            if n == token or n.endswith("/" + token) or n.startswith(token + "/") or \
               ("/" + token + "/") in n:
                return True
        elif n.endswith("." + token) or n.endswith("/" + token):
            return True
    return False


def main():
    doc, inputs, lit_dir, bin_dir = sys.argv[1:5]
    if os.path.isfile(bin_dir):
        bin_dir = os.path.dirname(bin_dir)
    cases = {d for d in os.listdir(inputs) if os.path.isdir(os.path.join(inputs, d))}
    lit_text = "".join(open(f, encoding="utf-8").read() for f in glob.glob(os.path.join(lit_dir, "*.test")))
    names = gtest_names(bin_dir)
    errors, documented, n_lit, n_unit = [], set(), 0, 0

    def check_lit(no, token):
        nonlocal n_lit
        prefix = token.upper()
        if token not in cases:
            errors.append(f"{doc}:{no}: lit case '{token}' has no folder {inputs}/{token}")
        elif not re.search(rf"--check-prefix={re.escape(prefix)}(?=\s|$)", lit_text, re.M) or \
                not re.search(rf"^# {re.escape(prefix)}:", lit_text, re.M):
            errors.append(f"{doc}:{no}: lit case '{token}' has no RUN/CHECK lines in {lit_dir}/*.test")
        documented.add(token)
        n_lit += 1

    def check_unit(no, token):
        nonlocal n_unit
        if not unit_exists(token, names):
            errors.append(f"{doc}:{no}: unit test '{token}' is not in any qlc-unit-* binary")
        n_unit += 1

    for no, header, cells in tables(doc):
        for col, title in enumerate(header):
            kind = title.split()[0] if title else ""
            if kind not in ("unit", "lit", "test") or col >= len(cells):
                continue
            cell = cells[col]
            # "— (reason)": no test, and the names in the reason are not tests of this row.
            tokens = [] if cell.startswith("—") else re.findall(r"`([^`]+)`", cell)
            if not tokens:
                if not re.match(r"^—\s*\S", cell):
                    errors.append(f"{doc}:{no}: the {kind} cell is empty or a bare '—': name the test, "
                                  f"or say why there is none ('— (reason)')")
                continue
            for t in tokens:
                if kind == "lit" or (kind == "test" and t in cases):
                    check_lit(no, t)
                else:
                    check_unit(no, t)

    for c in sorted(cases - documented):
        errors.append(f"{doc}: corpus case '{c}' ({inputs}/{c}) is in no lit column of the document")
    for e in errors:
        print(e)
    print(f"check_security_doc: {n_lit} lit and {n_unit} unit references checked, "
          f"{len(cases)} corpus cases, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
