"""Table 9: coverage-guided fuzzing of every parser, from the records ``scripts/fuzz.py --record`` writes.

Nothing is run here (a million executions per target takes hours): each target's last recorded
run is read from ``tests/fuzz/records/<target>.json``; the findings fixed and open are counted
from the inputs kept in ``tests/fuzz/regressions/<target>/`` and ``tests/fuzz/known/<target>/``;
``tests/fuzz/records/NOTES.md`` (what each finding was and how it was fixed) follows the table.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tables import Context, Section, markdown_table

TITLE = "Fuzzing: coverage-guided, every parser (atheris)"
FUZZ_DIR = Path(__file__).resolve().parents[2] / "tests" / "fuzz"


def _reads(path: Path) -> str:
    """The first line of a target module's docstring (what it reads), without importing it."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    line = doc.split("\n", 1)[0].strip().rstrip(".").removeprefix("Fuzz target: ")
    return (line[:1].upper() + line[1:]).replace("``", "`").replace("|", "/")


def _count(folder: Path) -> int:
    """Inputs kept in a folder (one per distinct finding)."""
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else 0


def rows(fuzz_dir: Path = FUZZ_DIR) -> tuple[list[list[str]], list[str]]:
    """The table's rows, one per target module, and the commands of the recorded runs."""
    table, commands = [], []
    for module in sorted(fuzz_dir.glob("fuzz_*.py")):
        name = module.stem[len("fuzz_"):]
        fixed, open_ = _count(fuzz_dir / "regressions" / name), _count(fuzz_dir / "known" / name)
        path = fuzz_dir / "records" / f"{name}.json"
        record = json.loads(path.read_text()) if path.is_file() else None
        if record is None:
            table.append([name, _reads(module), "not recorded", "", "", str(fixed + open_), str(fixed), str(open_),
                          ""])
            continue
        load = "–".join(f"{x:g}" for x in record.get("load_average") or [])
        run = [record["date"][:10]]
        run += [f"{record['seconds'] / 60:.0f} min"] if record.get("seconds") else []
        run += [f"load {load}"] if load else []
        coverage = f"{record['cov']} / {record['ft']}" if record.get("cov") is not None else "not recorded"
        table.append([name, _reads(module), f"{record['executions']:,}", coverage, str(len(record["findings"])),
                      str(fixed + open_), str(fixed), str(open_), ", ".join(run)])
        commands.append(f"- {name}: `{record['command']}` (atheris {record.get('atheris', '?')})"
                        + (f" ({record['note']})" if record.get("note") else ""))
    return table, commands


def table(ctx: Context, fuzz_dir: Path = FUZZ_DIR) -> Section:
    """The fuzzing table from the committed records; the notes on the findings after it."""
    body_rows, commands = rows(fuzz_dir)
    header = ["target", "what it reads", "executions", "coverage (cov / ft)", "findings in the run",
              "findings kept", "fixed", "open", "run (date, wall time, load average)"]
    notes = fuzz_dir / "records" / "NOTES.md"
    body = [
        markdown_table(header, body_rows),
        "",
        "From the last recorded run of each target (`python scripts/fuzz.py TARGET --runs N --save-corpus "
        "--record`, which writes `tests/fuzz/records/TARGET.json`); this table is generated from those records. "
        "Coverage is libFuzzer's count of tfedge's code edges (`cov`) and features (`ft`) reached, tfedge "
        "instrumented, not numpy or the backends. A finding is an exception other than the target's own, more "
        "than 2 s on one input, peak memory growing more than 4x the input + 64 MiB, or a crash. *Findings "
        "kept*: every distinct finding ever made, one input each: *fixed* ones in `tests/fuzz/regressions/TARGET/` "
        "(replayed by `tests/fuzz/test_fuzz_replay.py`), *open* ones in `tests/fuzz/known/TARGET/` (each "
        "refused by the default probe, tested). Commands:",
        "",
        *commands,
    ]
    if notes.is_file():
        body += ["", notes.read_text().strip()]
    return Section(TITLE, "\n".join(body))
