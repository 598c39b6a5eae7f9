"""The mutation score of each module `make mutation` mutates, from mutmut's results in `mutants/`.

Prints one Markdown row per module (mutants, killed, survived, equivalent, score) and the survivors
not listed as equivalent in `tests/mutation_equivalents.yaml`; `--module` narrows both to one.
Score: killed (a test failed or timed out) over mutants that are not equivalent.
"""

import argparse
import json
import tomllib
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
KILLED = {1, 3, 36, 24, -24, 152, 255}
"""mutmut's exit codes of a mutant some test caught: a failure, an internal error, a timeout."""
SURVIVED = {0}


def mutated_modules() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]


def equivalents() -> dict[str, str]:
    """Surviving mutants that behave as the original, with why, by mutant name."""
    return yaml.safe_load((ROOT / "tests" / "mutation_equivalents.yaml").read_text()) or {}


def results(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / f"{module}.meta"
    return json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}


def verdict(name: str, code: int | None, known: dict[str, str]) -> str:
    if name in known:
        return "equivalent"
    if code in KILLED:
        return "killed"
    return "survived" if code in SURVIVED else "not run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", help="one module path, e.g. ingestion/client.py")
    args = parser.parse_args()
    known = equivalents()
    print("| module | mutants | killed | survived | not run | equivalent | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    survivors = []
    for module in [args.module] if args.module else mutated_modules():
        codes = results(module)
        outcome = Counter(verdict(name, code, known) for name, code in codes.items())
        judged = len(codes) - outcome["equivalent"]
        score = f"{outcome['killed'] / judged:.0%}" if judged and not outcome["not run"] else "-"
        print(
            f"| `{module}` | {len(codes)} | {outcome['killed']} | {outcome['survived']} | {outcome['not run']} "
            f"| {outcome['equivalent']} | {score} |"
        )
        survivors += [name for name, code in codes.items() if code in SURVIVED and name not in known]
    if survivors:
        print("\nSurvivors (kill each with a test, or list it in tests/mutation_equivalents.yaml with why):")
        print("\n".join(f"  {name}" for name in sorted(survivors)))


if __name__ == "__main__":
    main()
