"""The mutation score of each module `make mutation` mutates, from mutmut's results in `mutants/`.

Prints one Markdown row per module and the survivors not listed in
`tests/mutation_equivalents.yaml`; `--module` narrows both to one. A mutant no test reaches counts
as a survivor; one that only changes the letter case of SQL keywords and identifiers is equivalent
(`only_sql_case`). A listed equivalent counts as equivalent only while it survives: a listed name that
a test kills, or that no longer exists (mutmut numbers mutants by position, so an edit renames
them), is reported as stale. Score: killed over mutants that are not equivalent, once all have run; before
that, the score of those judged with its 95% interval (Wilson), an estimate when the judged ones are a
random sample (`--sample N` prints one, seeded, to pass to `mutmut run`).
"""

import argparse
import ast
import json
import math
import random
import re
import tomllib
from collections import Counter
from functools import cache
from pathlib import Path

import yaml
from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious", "skipped"}


def mutated_modules() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]


def equivalents() -> dict[str, str]:
    """Surviving mutants that behave as the original, with why, by mutant name."""
    return yaml.safe_load((ROOT / "tests" / "mutation_equivalents.yaml").read_text()) or {}


def results(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / f"{module}.meta"
    return json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}


SQL_WORDS = re.compile(r"\b(select|insert|update|delete|create|pragma|begin|from|where|on conflict)\b", re.IGNORECASE)
SQL_LITERAL = re.compile(r"'[^']*'")
SQL_ALIAS = re.compile(r"\bAS\s+(\w+)", re.IGNORECASE)


@cache
def mutant_functions(module: str) -> dict[str, str]:
    """Each function of mutmut's copy of `module` (the original and every mutant), as source."""
    source = (ROOT / "mutants" / module).read_text()
    lines = re.split(r"\r\n|\r|\n", source)  # once (`ast.get_source_segment` splits on every call), as ast counts
    return {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def only_sql_case(module: str, name: str) -> bool:
    """Whether a mutant only changes the letter case of SQL text: SQLite and DuckDB read keywords and
    unquoted identifiers in any case. Not when a quoted literal, an alias (a result column's name)
    or a double-quoted identifier changes."""
    functions = mutant_functions(module)
    mutant = name.rsplit(".", 1)[-1]
    original = functions.get(mutant.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
    changed = functions.get(mutant)
    if original is None or changed is None:
        return False
    pairs = [(a, b) for a, b in zip(original.splitlines()[1:], changed.splitlines()[1:], strict=False) if a != b]
    return bool(pairs) and all(
        a.lower() == b.lower()
        and SQL_WORDS.search(a)
        and '\\"' not in a
        and SQL_LITERAL.findall(a) == SQL_LITERAL.findall(b)
        and SQL_ALIAS.findall(a) == SQL_ALIAS.findall(b)
        for a, b in pairs
    )


def verdict(module: str, name: str, code: int | None, known: dict[str, str]) -> str:
    status = status_by_exit_code[code]
    if status in KILLED:
        return "killed"
    if status in SURVIVED:
        return "equivalent" if name in known or only_sql_case(module, name) else "survived"
    return "not run"


def wilson_interval(killed: int, judged: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% interval of a kill rate measured on a random sample of a module's mutants."""
    rate = killed / judged
    centre = (rate + z * z / (2 * judged)) / (1 + z * z / judged)
    spread = z * math.sqrt(rate * (1 - rate) / judged + z * z / (4 * judged * judged)) / (1 + z * z / judged)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def sample(module: str, size: int, seed: int = 21) -> list[str]:
    """A seeded random sample of a module's mutants (mutmut must have generated them once)."""
    names = sorted(results(module))
    if not names:
        raise SystemExit(f"no mutants of {module} in mutants/: run `make mutation` once to generate them")
    return random.Random(seed).sample(names, min(size, len(names)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", help="one module path, e.g. ingestion/client.py")
    parser.add_argument("--sample", type=int, metavar="N", help="print N random mutant names of --module")
    parser.add_argument("--seed", type=int, default=21, help="the sample's seed (another seed, another sample)")
    args = parser.parse_args()
    if args.sample:
        if not args.module:
            parser.error("--sample needs --module")
        print(" ".join(sample(args.module, args.sample, args.seed)))
        return
    known = equivalents()
    estimates = []
    print("| module | mutants | killed | survived | not run | equivalent | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    survivors, seen = [], {}
    for module in [args.module] if args.module else mutated_modules():
        codes = results(module)
        seen.update(codes)
        verdicts = {name: verdict(module, name, code, known) for name, code in codes.items()}
        outcome = Counter(verdicts.values())
        judged = len(codes) - outcome["equivalent"]
        score = f"{outcome['killed'] / judged:.0%}" if judged and not outcome["not run"] else "-"
        print(
            f"| `{module}` | {len(codes)} | {outcome['killed']} | {outcome['survived']} | {outcome['not run']} "
            f"| {outcome['equivalent']} | {score} |"
        )
        survivors += [name for name, result in verdicts.items() if result == "survived"]
        measured = outcome["killed"] + outcome["survived"]
        if outcome["not run"] and measured:
            low, high = wilson_interval(outcome["killed"], measured)
            estimates.append(f"  {module}: {outcome['killed']} of {measured} judged killed ({low:.0%} to {high:.0%})")
    stale = sorted(name for name in known if name not in seen or status_by_exit_code[seen[name]] in KILLED)
    if estimates:
        print("\nPartly run (a random sample estimates the score within the 95% interval shown):")
        print("\n".join(estimates))
    if survivors:
        print("\nSurvivors (kill each with a test, or list it in tests/mutation_equivalents.yaml with why):")
        print("\n".join(f"  {name}" for name in sorted(survivors)))
    if stale and not args.module:
        print("\nListed as equivalent but killed or gone (remove from tests/mutation_equivalents.yaml):")
        print("\n".join(f"  {name}" for name in stale))


if __name__ == "__main__":
    main()
