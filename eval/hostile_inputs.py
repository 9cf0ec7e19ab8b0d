"""Hostile-input re-run: the kinds of broken and adversarial input issue 15 reported, through ``cx-pipeline parse``.

Every case is generated at run time, from the shared real fixtures (mutated in a temporary folder, never
copied into the repo) or written here by hand, and run in its own process with a wall timeout and its
CPU time and peak memory taken from ``wait4``. Each case says what a serious tool must do with it, and
the run is classified:

* ``handled``   the expectation held: the bad records were rejected one by one while the good ones were
                kept, or a valid file was read whole;
* ``clear error`` the file was refused with a one-line error naming it (right for a truncated page; for
                one bad record in a good file it costs the file's good records);
* ``warned``    accepted, with a note naming the possible problem (a plain table that may have been cut);
* ``silent``    exit 0 but the expectation failed (a value changed, dropped or re-typed without a word);
* ``crash``     a Python traceback, a signal or an error that does not name the file;
* ``hang``      the wall timeout passed (the process is killed).

Random mutations (truncations and byte flips of every fixture) have no single right answer; they count as
``handled`` when they end in events and ``clear error`` when refused, and as crash/hang otherwise.

The HTTP, inbox, kill and file-name failures of the same issue need servers, a Dagster instance or a
kill at a chosen instant; they are covered by the hostile-input tests (``cx_pipeline_tests/test_hostile_*``).

Usage: ``python eval/hostile_inputs.py [--fixtures ../shared/fixtures] [--out eval/results/hostile_inputs.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures"
TIMEOUT_S = 120.0


@dataclass
class Run:
    code: int | None
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_mb: float
    events: pl.DataFrame | None
    rejects: pl.DataFrame | None
    timed_out: bool


@dataclass
class Case:
    name: str
    kind: str  # what issue 15 item it repeats
    files: list[Path]
    #: the verdict (handled / clear error / silent) and a detail, for a run that did not crash or hang
    expect: Callable[[Run], tuple[str, str]]
    extra_args: list[str] = field(default_factory=list)
    random_mutation: bool = False


def _run(case: Case, out: Path) -> Run:
    out.unlink(missing_ok=True)
    rejects_path = out.with_name(out.stem + ".rejects.parquet")
    rejects_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "cx_pipeline.cli", "parse", *map(str, case.files), "-o", str(out), *case.extra_args]
    env = {**os.environ, "CX_PIPELINE_HASH_SECRET": "hostile-input-eval"}
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > TIMEOUT_S:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    events = pl.read_parquet(out) if out.exists() else None
    rejects = pl.read_parquet(rejects_path) if rejects_path.exists() else None
    return Run(
        code=None if timed_out else proc.returncode,
        stderr=stderr,
        seconds=time.monotonic() - started,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_mb=usage.ru_maxrss / 1024,
        events=events,
        rejects=rejects,
        timed_out=timed_out,
    )


def classify(case: Case, run: Run) -> tuple[str, str]:
    if run.timed_out:
        return "hang", f"killed after {TIMEOUT_S:.0f} s"
    if "Traceback" in run.stderr or run.code is None or run.code < 0 or run.code > 2:
        last = run.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return "crash", f"exit {run.code}: {last[0][:160]}"
    if run.code != 0 and not _errors(run):
        return "crash", f"exit {run.code} without an error line naming the file"
    return case.expect(run)


def _errors(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("error:")]


def _summary(run: Run) -> str:
    errors = _errors(run)
    if errors:
        return errors[0][:200]
    n_rejects = run.rejects.height if run.rejects is not None else 0
    n_events = run.events.height if run.events is not None else 0
    return f"exit {run.code}, {n_events} event(s), {n_rejects} reject(s)"


# -- expectations: each returns (verdict, detail) ----------------------------------------------------
Expectation = Callable[[Run], tuple[str, str]]


def _refused(*words: str, warn_words: tuple[str, ...] = ()) -> Expectation:
    """The file must be refused: non-zero exit and an error line naming it (and, where given, the reason).
    Accepted with a note naming the problem (``words`` or ``warn_words``) is ``warned``, not silent."""

    def check(run: Run) -> tuple[str, str]:
        errors = _errors(run)
        if run.code == 0 or not errors:
            notes = [line.strip() for line in run.stderr.splitlines() if line.strip().startswith("note:")]
            warned = [n for n in notes if any(w.lower() in n.lower() for w in (*words, *warn_words))]
            if warned:
                return "warned", f"accepted with a note: {warned[0][:180]}"
            return "silent", f"accepted: {_summary(run)}"
        missing = [w for w in words if not any(w.lower() in e.lower() for e in errors)]
        note = f" (does not say {missing})" if missing else ""
        return "clear error", errors[0][:180] + note

    return check


def _kept_and_rejected(min_events: int, min_rejects: int = 1) -> Expectation:
    """Good records kept (at least ``min_events`` events written) and the bad ones rejected with reasons.
    Refusing the whole file is a clear error, though it costs the file's good records."""

    def check(run: Run) -> tuple[str, str]:
        n_events = run.events.height if run.events is not None else 0
        n_rejects = run.rejects.height if run.rejects is not None else 0
        if n_events >= min_events and n_rejects >= min_rejects:
            return "handled", _summary(run) if run.code == 0 else f"{n_events} event(s) kept; {_summary(run)}"
        if run.code != 0 and _errors(run):
            lost = f" ({n_events} of {min_events}+ good event(s) kept)" if n_events < min_events else ""
            return "clear error", _summary(run) + lost
        if n_rejects < min_rejects:
            return "silent", f"no reject recorded ({n_events} event(s), exit {run.code})"
        return "silent", f"only {n_events} event(s) kept, expected at least {min_events}"

    return check


def _cut_refused(run: Run) -> tuple[str, str]:
    """A file cut inside its last value: refused as truncated, or that record rejected as possibly cut (a plain
    table, whose producer may end files without a line break); never the cut value stored."""
    reasons = run.rejects["reason"].to_list() if run.rejects is not None else []
    if any("cut" in r for r in reasons):
        return "handled", f"last record rejected: {_summary(run)}"
    return _refused("truncat", warn_words=("was cut", "incomplete"))(run)


def _no_crash(run: Run) -> tuple[str, str]:
    return ("handled" if run.code == 0 else "clear error"), _summary(run)


def _parsed_as(prefix: str) -> Expectation:
    def check(run: Run) -> tuple[str, str]:
        if run.code != 0:
            return "clear error", _summary(run)
        parsers = sorted(set(run.events["parser"].to_list())) if run.events is not None and run.events.height else []
        if parsers and all(p.startswith(prefix) for p in parsers):
            return "handled", _summary(run)
        return "silent", f"parsed by {parsers}, expected {prefix}"

    return check


def _nps_values(expected: list[float], rejects: int, or_note: str | None = None) -> Expectation:
    """The scored NPS answers are exactly ``expected`` and the others were rejected (or, where ``or_note`` is
    given, kept unscored with a note saying so)."""

    def check(run: Run) -> tuple[str, str]:
        if run.events is None:
            return ("clear error", _summary(run)) if _errors(run) else ("silent", f"no output (exit {run.code})")
        nps = run.events.filter(pl.col("metric") == "nps")["score_raw"].drop_nulls().sort().to_list()
        n_rejects = run.rejects.height if run.rejects is not None else 0
        if nps != sorted(expected):
            shown = f"{nps[:12]}{'…' if len(nps) > 12 else ''}"
            return "silent", f"NPS answers {shown} ({len(nps)}), expected {len(expected)}"
        if n_rejects < rejects:
            notes = [ln.strip() for ln in run.stderr.splitlines() if or_note and or_note in ln]
            if notes:
                return "handled", f"kept unscored with a note: {notes[0][:160]}"
            return "silent", f"{n_rejects} reject(s), expected {rejects}"
        return "handled", _summary(run)

    return check


def _all_rows(rows: int) -> Expectation:
    def check(run: Run) -> tuple[str, str]:
        n = run.events.height if run.events is not None else 0
        if n == rows:
            return "handled", f"{n} event(s)"
        return ("clear error" if _errors(run) else "silent"), f"{n} event(s) of {rows}; {_summary(run)}"

    return check


# -- case builders ----------------------------------------------------------------------------------
def _write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


LENIENT = {"text_number", "consumer_list"}


def review_value_cases(fx: Path, tmp: Path) -> list[Case]:
    cases: list[Case] = []
    source = fx / "trustpilot_json" / "tp_nextdata_reviews_majority.com_page1.json"
    if not source.exists():
        return cases
    reviews = json.loads(source.read_bytes())
    good_csv = _write(tmp, "good_nps.csv", "id,date,nps\n" + "".join(f"r{i},2025-04-0{1 + i % 9},{i % 11}\n"
                                                                        for i in range(30)))
    mutations: dict[str, Callable[[dict], None]] = {
        "date_9999_minus5": lambda r: r["dates"].update(publishedDate="9999-12-31T23:00:00-05:00",
                                                        experiencedDate="9999-12-31T23:00:00-05:00"),
        "date_0001_plus5": lambda r: r["dates"].update(publishedDate="0001-01-01T00:00:00+05:00",
                                                       experiencedDate="0001-01-01T00:00:00+05:00"),
        "date_garbage": lambda r: r["dates"].update(publishedDate="yesterday-ish"),
        "rating_string": lambda r: r.update(rating="five"),
        "rating_dict": lambda r: r.update(rating={"value": 5}),
        "rating_out_of_scale": lambda r: r.update(rating=11),
        "id_missing": lambda r: r.pop("id"),
        "text_number": lambda r: r.update(text=12345),
        "consumer_list": lambda r: r.update(consumer=["x"]),
    }
    for name, mutate in mutations.items():
        data = json.loads(source.read_bytes())
        mutate(data[3])
        bad = _write(tmp, f"tp_{name}.json", json.dumps(data))
        # a bad date, rating or id must be rejected by name; a wrong-typed text or consumer may be read leniently
        needs_reject = 0 if name in LENIENT else 1
        cases.append(Case(f"review {name}", "1 out-of-range/wrong type", [bad],
                          _kept_and_rejected(len(reviews) - 1, needs_reject)))
        cases.append(Case(f"review {name} + good csv", "1 one bad file loses the batch", [bad, good_csv],
                          _kept_and_rejected(30, 0)))
    # a lone surrogate inside a JSON string (valid JSON text, invalid Unicode)
    text = source.read_text("utf-8")
    marker = json.dumps(reviews[2]["text"])
    bad = _write(tmp, "tp_lone_surrogate.json", text.replace(marker, marker[:-1] + ' x \\ud800"', 1))
    cases.append(Case("review lone surrogate", "1 invalid Unicode", [bad], _kept_and_rejected(len(reviews) - 1, 0)))
    cases.append(Case("review lone surrogate + good csv", "1 one bad file loses the batch", [bad, good_csv],
                      _kept_and_rejected(30, 0)))
    return cases


def survey_value_cases(fx: Path, tmp: Path) -> list[Case]:
    cases = [
        Case("survey nps 9,10,11", "2 out-of-scale answer",
             [_write(tmp, "nps_9_10_11.csv", "id,nps,comment\n1,9,good\n2,10,great\n3,11,wow\n")],
             _nps_values([9.0, 10.0], 1)),
        Case("survey one 11 among 99", "2 out-of-scale answer",
             [_write(tmp, "nps_99_and_11.csv", "id,nps,comment\n" + "".join(f"{i},{i % 11},ok\n" for i in range(99))
                     + "99,11,hmm\n")],
             _nps_values([float(i % 11) for i in range(99)], 1)),
        Case("survey formula =10 among 99", "2 formula-looking cell",
             [_write(tmp, "nps_99_and_formula.csv", "id,nps,comment\n"
                     + "".join(f"{i},{i % 11},ok\n" for i in range(99)) + "99,=10,hmm\n")],
             _nps_values([float(i % 11) for i in range(99)], 1)),
        Case("survey negative answer", "2 out-of-scale answer",
             [_write(tmp, "nps_negative.csv", "id,nps\n1,7\n2,-3\n3,9\n")],
             _nps_values([7.0, 9.0], 1, or_note="no basis")),  # negative codes are "don't know" in exports
        Case("survey date 9999", "1 out-of-range date",
             [_write(tmp, "nps_date_9999.csv", "id,date,nps\n1,2025-04-01,7\n2,9999-12-31T23:00:00-05:00,9\n"
                     "3,0001-01-01T00:00:00+05:00,8\n4,2025-04-02,10\n")],
             _kept_and_rejected(2)),
    ]
    nps = fx / "survey_exports" / "nps_simple_response-date_user_rating.csv"
    if nps.exists():
        data = nps.read_bytes()
        rng = random.Random(15)
        # cut inside the last field of a random row: ",10" → ",1" is the reported silent truncation
        tens = [i for i in range(len(data) - 3) if data[i:i + 3] == b",10" and data[i + 3:i + 4] in (b"\n", b"\r")]
        for n, at in enumerate(rng.sample(tens, 8)):
            cut = _write(tmp, f"nps_cut_{n}.csv", data[: at + 2])
            cases.append(Case(f"survey cut inside ',10' #{n}", "2 truncated CSV", [cut], _cut_refused))
    return cases


def trustpilot_page_cases(fx: Path, tmp: Path) -> list[Case]:
    cases: list[Case] = []
    folder = fx / "trustpilot_html"
    if not folder.exists():
        return cases
    page = folder / "tp_www_burgerking.dk_2024-06_languages-all_da-en-no-sv.html"
    data = page.read_bytes()
    for share in (0.35, 0.6, 0.9):
        cut = _write(tmp, f"tp_cut_{int(share * 100)}.html", data[: int(len(data) * share)])
        cases.append(Case(f"trustpilot page cut at {share:.0%}", "3 truncated page", [cut], _refused("trustpilot")))
    padded = data.replace(b"<head>", b"<head><!--" + b"x" * (50 * 1024 * 1024) + b"-->", 1)
    cases.append(Case("trustpilot page with 50 MiB comment in <head>", "3 padded page",
                      [_write(tmp, "tp_padded.html", padded)], _parsed_as("trustpilot")))
    return cases


def cost_cases(tmp: Path) -> list[Case]:
    nested = "<html><body><div itemscope itemtype='https://schema.org/Review'>" + "<span itemprop='x'>" * 100_000 \
             + "deep" + "</span>" * 100_000 + "</div></body></html>"
    wide = ",".join(f"q{i}" for i in range(100_000)) + "\n" + ",".join("5" for _ in range(100_000)) + "\n"
    deep_json = '{"reviews": ' + "[" * 100_000 + "]" * 100_000 + "}"
    rows = 2_000_000
    big = "id,date,nps\n" + "".join(f"{i},2025-04-{1 + i % 28:02d},{i % 11}\n" for i in range(rows))
    return [
        Case("10^5 nested <span itemprop>", "4 nesting cost", [_write(tmp, "nested.html", nested)], _refused()),
        Case("CSV with 100k columns", "4 column count", [_write(tmp, "wide.csv", wide)], _refused()),
        Case("JSON nested 10^5 deep", "4 nesting cost", [_write(tmp, "deep.json", deep_json)], _refused()),
        Case("valid 2M-row NPS CSV", "4 memory on a valid file", [_write(tmp, "big.csv", big)],
             _all_rows(rows)),
    ]


def random_mutation_cases(fx: Path, tmp: Path, per_file: int) -> list[Case]:
    rng = random.Random(1515)
    cases: list[Case] = []
    files = sorted(p for p in fx.glob("*/*") if p.is_file() and p.suffix in {".json", ".html", ".csv", ".xlsx",
                                                                                  ".sav", ".txt"})
    for path in files:
        data = path.read_bytes()
        if not data:
            continue
        for n in range(per_file):
            if n % 2 == 0:
                mutated = data[: rng.randrange(1, len(data))]
                how = "truncated"
            else:
                buf = bytearray(data)
                for _ in range(max(1, len(buf) // 2000)):
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
                mutated = bytes(buf)
                how = "byte flips"
            out = _write(tmp, f"mut_{path.stem[:40]}_{n}{path.suffix}", mutated)
            cases.append(Case(f"{path.parent.name}/{path.name[:50]} {how}", "random mutation", [out], _no_crash,
                              random_mutation=True))
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "hostile_inputs.md")
    ap.add_argument("--mutations-per-file", type=int, default=4)
    ap.add_argument("--skip-large", action="store_true", help="leave out the 2M-row and 100k-column cases")
    ap.add_argument("--render-only", action="store_true", help="rewrite --out from its .json without running")
    args = ap.parse_args(argv)
    if args.render_only:
        write_results(json.loads(args.out.with_suffix(".json").read_text("utf-8")), args.out)
        return 0
    if not args.fixtures.exists():
        print(f"error: {args.fixtures} is absent; the hostile-input run mutates the shared fixtures", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cx-hostile-") as tmp_name:
        tmp = Path(tmp_name)
        cases = (review_value_cases(args.fixtures, tmp) + survey_value_cases(args.fixtures, tmp)
                 + trustpilot_page_cases(args.fixtures, tmp) + ([] if args.skip_large else cost_cases(tmp))
                 + random_mutation_cases(args.fixtures, tmp, args.mutations_per_file))
        rows = []
        for i, case in enumerate(cases):
            run = _run(case, tmp / f"out_{i}.parquet")
            verdict, detail = classify(case, run)
            rows.append({"case": case.name, "kind": case.kind, "verdict": verdict, "detail": detail,
                         "seconds": round(run.seconds, 1), "cpu_seconds": round(run.cpu_seconds, 1),
                         "peak_mb": round(run.peak_mb), "random": case.random_mutation})
            print(f"[{i + 1}/{len(cases)}] {verdict:8} {case.name}: {detail}", file=sys.stderr)
    write_results(rows, args.out)
    return 0


def write_results(rows: list[dict], out: Path) -> None:
    def tally(selected: list[dict]) -> str:
        c = Counter(r["verdict"] for r in selected)
        return (f"| {len(selected)} | {c['handled']} | {c['clear error']} | {c['warned']} | {c['silent']} | "
                f"{c['crash']} | {c['hang']} |")

    named = [r for r in rows if not r["random"]]
    random_rows = [r for r in rows if r["random"]]
    lines = [
        "# Hostile inputs through `cx-pipeline parse`",
        "",
        f"Generated by `python eval/hostile_inputs.py` ({time.strftime('%Y-%m-%d')}); every case in its own "
        f"process, wall timeout {TIMEOUT_S:.0f} s. *handled* = what a serious tool does (bad records rejected one "
        "by one with the good ones kept, a valid file read whole); *clear error* = refused with an error naming "
        "the file; *warned* = accepted with a note naming the possible problem; *silent* = exit 0 with the "
        "expectation failed; "
        "*crash* = traceback or an unclear error; *hang* = killed at the timeout.",
        "",
        "| inputs | tried | handled | clear error | warned | silent | crash | hang |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        "| issue 15 cases " + tally(named),
        "| random mutations of the shared fixtures " + tally(random_rows),
        "",
        "| case | issue item | verdict | detail | wall s | CPU s | peak MB |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in named + [r for r in random_rows if r["verdict"] in ("silent", "crash", "hang")]:
        detail = re.sub(r"/tmp/cx-hostile-[^/]+/", "", r["detail"]).replace("|", "\\|")
        lines.append(f"| {r['case']} | {r['kind']} | {r['verdict']} | {detail} | {r['seconds']} | "
                     f"{r['cpu_seconds']} | {r['peak_mb']} |")
    if random_rows:
        handled = sum(r["verdict"] == "handled" for r in random_rows)
        refused = sum(r["verdict"] == "clear error" for r in random_rows)
        lines += ["", f"Random mutations not listed above ended in events ({handled}) or a clear error naming the "
                  f"file ({refused}) of {len(random_rows)}; the slowest took "
                  f"{max(r['seconds'] for r in random_rows)} s "
                  f"and the largest peak was {max(r['peak_mb'] for r in random_rows)} MB."]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
