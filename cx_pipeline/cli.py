"""``cx-pipeline``: the offline command line over the same code the Dagster assets run."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import warnings
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cx_pipeline.config.data_root import check_reachable, is_url, open_store
from cx_pipeline.contract import to_arrow
from cx_pipeline.contract.event_schema import data_dictionary_markdown
from cx_pipeline.contract.identity import HASH_SECRET_ENV, CustomerKeyer
from cx_pipeline.scoring.text.score import DEFAULT_SENTIMENT_METHOD, SENTIMENT_METHODS

VERBOSE_HELP = "show Dagster's run logs and full tracebacks (default: the summary, warnings and errors only)"
DEFAULT_SITE_PORT = 8765  # = cx_pipeline.demo.sample_site.DEFAULT_PORT, the bundled sources file's default
DICTIONARY_PATH = Path(__file__).resolve().parent.parent / "docs" / "data_dictionary.md"
DATASETS_PATH = DICTIONARY_PATH.with_name("datasets.md")


def _keyer_from_env(stderr: Any) -> CustomerKeyer:
    secret = os.environ.get(HASH_SECRET_ENV)
    if not secret:
        print(
            f"note: {HASH_SECRET_ENV} is not set; customer_key uses a one-off random secret and will not "
            "link with other runs",
            file=stderr,
        )
        secret = secrets.token_hex(32)
    return CustomerKeyer(secret)


def _output_problem(path: str | None, option: str) -> str | None:
    """Why ``path`` cannot take a Parquet output, before any work is done: a missing folder or another suffix
    would otherwise end in a traceback or in Parquet bytes inside a file named .csv."""
    if not path:
        return None
    if is_url(path):  # never a local folder named "s3:"
        return f"{option} {path}: this output is a local file; write it locally and copy it to the object store"
    target = Path(path)
    if target.suffix.lower() != ".parquet":
        return f"{option} {path}: the output is Parquet; name it *.parquet (parse also writes JSON lines with --jsonl)"
    if target.is_dir():
        return f"{option} {path}: is a folder; name a file *.parquet"
    if not target.parent.is_dir():
        if target.parent.exists():
            return f"{option} {path}: {target.parent} is not a folder"
        return f"{option} {path}: the folder {target.parent} does not exist"
    if not os.access(target.parent, os.W_OK):
        return f"{option} {path}: the folder {target.parent} is not writable"
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _load_question_map(path: str | None) -> Any:
    """The --question-map file as a QuestionConfig (same format as the sources file's ``question_map``)."""
    if not path:
        return None
    import yaml

    from cx_pipeline.sources.surveys.question_registry import QuestionConfig

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the question map ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of question key/glob → settings (optionally under 'questions')")
    data = data.get("question_map", data)
    try:
        return QuestionConfig.from_mapping(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def cmd_parse(args: argparse.Namespace) -> int:
    from cx_pipeline.pipeline.parse_files import batch_rejects, dedupe_events, parse_paths

    problem = None if args.jsonl else _output_problem(args.output, "-o")
    urls = [p for p in args.paths if is_url(p)]
    if urls:  # not a local file named "s3:/…"
        problem = f"{urls[0]}: parse reads local files; copy it here first (the inbox sensor reads URLs)"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        questions = _load_question_map(args.question_map)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    keyer = _keyer_from_env(sys.stderr)
    outcomes = parse_paths(
        args.paths, keyer=keyer, brand=args.brand, source=args.source, questions=questions, sheet=args.sheet
    )
    failed = [o for o in outcomes if o.error]
    rejected: list[pl.DataFrame] = []
    for o in outcomes:
        if o.error:
            print(f"error: {o.error}", file=sys.stderr)
        else:
            records = o.result.record_count if o.result else 0
            print(f"{o.path}: {o.format}, {records} record(s), {o.events.height} event(s)", file=sys.stderr)
            for note in o.notes:
                print(f"  note: {note}", file=sys.stderr)
            refused = o.result.rejects if o.result else []
            if refused:
                print(f"  {len(refused)} record(s) rejected:", file=sys.stderr)
                for r in refused[:3]:
                    print(f"    {r.position or 'file'}: {r.reason}", file=sys.stderr)
                if len(refused) > 3:
                    print(f"    … and {len(refused) - 3} more", file=sys.stderr)
                rejected.append(batch_rejects("parse", o.path, refused, brand=args.brand,
                                              source_kind=_kind_of(o.format), raw_key=None,
                                              parser=o.result.parser))
    events, collapsed = dedupe_events([o.events for o in outcomes if not o.error])
    if collapsed:
        print(f"note: {collapsed} duplicate event(s) across overlapping inputs collapsed to their latest version",
              file=sys.stderr)
    if args.jsonl:
        if events is not None:
            out = sys.stdout
            for row in events.iter_rows(named=True):
                out.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
    elif args.output:
        import pyarrow.parquet as pq

        from cx_pipeline.contract import empty_events

        table = to_arrow(events if events is not None else empty_events())
        tmp = Path(f"{args.output}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(args.output)
        print(f"wrote {table.num_rows} event(s) to {args.output}", file=sys.stderr)
        rejects_path = Path(args.output).with_suffix(".rejects.parquet")
        if rejected:
            refused_rows = pl.concat(rejected)
            refused_rows.write_parquet(rejects_path, compression="zstd")
            print(f"wrote {refused_rows.height} rejected record(s) to {rejects_path}", file=sys.stderr)
        elif rejects_path.exists():
            rejects_path.unlink()  # a stale file from an earlier run would describe other inputs
    return 1 if failed else 0


def _kind_of(fmt_name: str | None) -> str | None:
    from cx_pipeline.sources import all_formats

    fmt = all_formats().get(fmt_name or "")
    return fmt.kind if fmt else None


def cmd_score(args: argparse.Namespace) -> int:
    """Text scores for a file of touchpoint events: the same ``score_text`` the scored_events asset runs."""
    import pyarrow.parquet as pq

    from cx_pipeline.contract import COLUMN_NAMES, contract_violations
    from cx_pipeline.scoring.text.score import score_text_and_mentions

    problem = _output_problem(args.output, "-o") or _output_problem(args.mentions, "--mentions")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        events = pl.read_parquet(args.input)
    except (OSError, pl.exceptions.PolarsError) as exc:
        print(f"error: {args.input}: cannot read as Parquet ({exc})", file=sys.stderr)
        return 1
    missing = [c for c in COLUMN_NAMES if c not in events.columns]
    if missing:
        print(f"error: {args.input}: not a touchpoint-event file, missing column(s) {missing}", file=sys.stderr)
        return 1
    problems = contract_violations(events.select(COLUMN_NAMES))
    if problems:
        print(f"error: {args.input}: breaks the event contract: {'; '.join(problems)}", file=sys.stderr)
        return 1
    try:
        result = score_text_and_mentions(
            events.select(COLUMN_NAMES), extra_term_files=args.terms or (), sentiment_method=args.sentiment_method
        )
    except ImportError as exc:  # e.g. the e5 method without the `e5` extra
        print(f"error: --sentiment-method {args.sentiment_method} needs an optional package: {exc}. Install it with "
              "pip install 'cx_pipeline[e5]', or use the default cx-linear method", file=sys.stderr)
        return 1
    except yaml.YAMLError as exc:
        print(f"error: --terms {', '.join(args.terms or [])}: not valid YAML ({exc})", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:  # a term file that cannot be read or has the wrong shape
        print(f"error: {exc}", file=sys.stderr)
        return 1
    scored = result.events
    # both files are written to temporaries first, so a failure leaves neither half-written
    outputs = [(scored, Path(args.output))] + ([(result.mentions, Path(args.mentions))] if args.mentions else [])
    try:
        for frame, path in outputs:
            pq.write_table(frame.to_arrow(), Path(f"{path}.tmp"), compression="zstd")
    except OSError as exc:
        for _, path in outputs:
            Path(f"{path}.tmp").unlink(missing_ok=True)
        print(f"error: cannot write {path}: {exc.strerror or exc}; nothing was written", file=sys.stderr)
        return 1
    for _, path in outputs:
        Path(f"{path}.tmp").replace(path)
    labels = (
        scored.filter(pl.col("sentiment_label").is_not_null()).group_by("sentiment_label").len().sort("sentiment_label")
    )
    summary = ", ".join(f"{k} {v}" for k, v in labels.iter_rows())
    print(f"scored {scored.height} event(s) → {args.output} ({summary or 'no text'})", file=sys.stderr)
    if args.mentions:
        print(f"{result.mentions.height} touchpoint mention(s) → {args.mentions}", file=sys.stderr)
    return 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    from cx_pipeline.pipeline.dataset_catalog import catalog_markdown

    docs = {DICTIONARY_PATH: data_dictionary_markdown(), DATASETS_PATH: catalog_markdown()}
    if args.check:
        stale = [p for p, text in docs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for p in stale:
            print(f"{p} is out of date: run `cx-pipeline dictionary`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in docs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The HTML report (and cx.duckdb) from a data root's stored outputs, as the scored/cx_report asset builds it."""
    from cx_pipeline.report import ReportInputError, build_report, write_bi_database

    store = open_store(args.data_root)
    check_reachable(store)
    if not is_url(args.output) and Path(args.output).suffix:
        print(f"error: -o {args.output}: the report is a folder (index.html and one page per brand); name a folder",
              file=sys.stderr)
        return 1
    try:
        result = build_report(store, args.output)
        db = write_bi_database(store) if store.is_local and not args.no_duckdb else None
    except ReportInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write the report to {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for b in result.brands:
        print(f"  {b.brand}: {b.file} ({b.bytes / 1024:.0f} kB)", file=sys.stderr)
    if db is not None:
        print(f"BI database: {db.path} ({len(db.views)} views)", file=sys.stderr)
    print(f"report built in {result.seconds:.1f}s; open {result.index}", file=sys.stderr)
    print(result.index)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cx_pipeline.demo.run_demo import run_demo

    home_problem = ("the Dagster instance lives in a local folder" if is_url(args.dagster_home)
                    else "is a file, not a folder" if Path(args.dagster_home).is_file() else None)
    if home_problem:
        print(f"error: --dagster-home {args.dagster_home}: {home_problem}", file=sys.stderr)
        return 1
    return run_demo(data_root=args.data_root, dagster_home=args.dagster_home, verbose=args.verbose)


def cmd_serve_sample_site(args: argparse.Namespace) -> int:
    """The demo's sample review site in the foreground, so ingest_reviews launched from the UI has its pages."""
    import time

    from cx_pipeline.demo.sample_site import SampleSiteServer

    try:
        site = SampleSiteServer(port=args.port)
    except OSError as exc:
        print(f"error: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}; pass --port N and start the "
              "code location with CX_SAMPLE_SITE_URL=http://127.0.0.1:N", file=sys.stderr)
        return 1
    with site:
        expected = os.environ.get("CX_SAMPLE_SITE_URL", f"http://127.0.0.1:{DEFAULT_SITE_PORT}")
        print(f"sample review site on {site.base_url} (Ctrl-C to stop); pages:", flush=True)
        for url in site.page_urls():
            print(f"  {url}", flush=True)
        if expected.rstrip("/") != site.base_url:
            print(f"warning: the sources file reads {expected}; start the code location with "
                  f"CX_SAMPLE_SITE_URL={site.base_url}", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


def _port(text: str) -> int:
    """A TCP port for argparse: a usage error, not a bind() traceback, for 99999 or "http"."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    from cx_pipeline.sources import all_formats

    parser = argparse.ArgumentParser(prog="cx-pipeline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    # also accepted after the command (cx-pipeline demo --verbose); SUPPRESS keeps a flag given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parse", parents=[common],
                       help="parse saved review pages / survey exports into touchpoint events")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--source",
        default="auto",
        choices=["auto", *all_formats()],
        help="source format (default: detect from content)",
    )
    p.add_argument("--brand", default="unknown", help="brand the feedback is about (default: unknown)")
    p.add_argument(
        "--question-map",
        metavar="FILE.yaml",
        help="survey question mapping, the format of the sources file's question_map "
        "(e.g. {Q7: {metric: csat, scale: [1, 5], touchpoint: delivery}, W: weight})",
    )
    p.add_argument("--sheet", metavar="NAME|N", help="workbook sheet to read (default: the one that looks like "
                   "one response per row)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--jsonl", action="store_true", help="print one JSON object per event")
    out.add_argument("-o", "--output", metavar="FILE.parquet", help="write the events as Parquet")
    p.set_defaults(func=cmd_parse)

    sc = sub.add_parser("score", parents=[common],
                        help="add language, sentiment and text touchpoints to a Parquet file of events")
    sc.add_argument("input", metavar="IN.parquet")
    sc.add_argument("-o", "--output", metavar="OUT.parquet", required=True)
    sc.add_argument(
        "--terms",
        action="append",
        metavar="TERMS.yaml",
        help="extra touchpoint term file(s) merged over the bundled lists (repeatable)",
    )
    sc.add_argument("--mentions", metavar="MENTIONS.parquet", help="also write the touchpoint mentions (one row per "
                    "event × touchpoint the text talks about, with the clause and its sentiment)")
    sc.add_argument(
        "--sentiment-method",
        default=DEFAULT_SENTIMENT_METHOD,
        choices=SENTIMENT_METHODS,
        help="cx-linear (default: trained linear model + lexicon), lexicon (rules only, fastest) or the far slower "
        "embedding methods e5 / e5+lexicon (need the e5 extra)",
    )
    sc.set_defaults(func=cmd_score)

    d = sub.add_parser("dictionary", parents=[common],
                       help="regenerate docs/data_dictionary.md and docs/datasets.md from the schemas")
    d.add_argument("--check", action="store_true", help="fail if the file is out of date instead of writing")
    d.set_defaults(func=cmd_dictionary)

    rep = sub.add_parser("report", parents=[common], help="build the HTML CX report (one page per brand plus an "
                         "index) from stored outputs, and refresh <data root>/cx.duckdb")
    rep.add_argument("--data-root", default=os.environ.get("CX_PIPELINE_DATA_ROOT", "./data"),
                     help="data root with the scored datasets (default: $CX_PIPELINE_DATA_ROOT or ./data)")
    rep.add_argument("-o", "--output", metavar="DIR", required=True, help="folder to write index.html and the "
                     "brand pages to")
    rep.add_argument("--no-duckdb", action="store_true", help="do not refresh <data root>/cx.duckdb")
    rep.set_defaults(func=cmd_report)

    demo = sub.add_parser("demo", parents=[common], help="run every asset end to end on the bundled samples, "
                          "offline; prints the summary (Dagster's run logs with --verbose)")
    demo.add_argument("--data-root", default=os.environ.get("CX_PIPELINE_DATA_ROOT", "./data"),
                      help="folder or fsspec URL (s3://bucket/prefix needs s3fs and a reachable bucket) "
                      "(default: $CX_PIPELINE_DATA_ROOT or ./data)")
    demo.add_argument("--dagster-home", default=os.environ.get("DAGSTER_HOME", "./.dagster_home"),
                      help="local folder of the Dagster instance (default: $DAGSTER_HOME or ./.dagster_home)")
    demo.set_defaults(func=cmd_demo)

    site = sub.add_parser("serve-sample-site", parents=[common], help="serve the demo's sample review site on "
                          "127.0.0.1 until Ctrl-C, where the bundled sources file expects it, so ingest_reviews "
                          "also runs from the UI")
    site.add_argument("--port", type=_port, default=DEFAULT_SITE_PORT,
                      help=f"port on 127.0.0.1 (default: {DEFAULT_SITE_PORT}, the bundled sources file's default; "
                      "another port needs CX_SAMPLE_SITE_URL=http://127.0.0.1:PORT for the code location)")
    site.set_defaults(func=cmd_serve_sample_site)
    return parser


def _quiet(verbose: bool) -> None:
    """Dagster's run logs and developer warnings only with --verbose: by default a command shows its own summary
    and warnings, not some 200 lines of DEBUG records that bury it."""
    level = logging.DEBUG if verbose else logging.WARNING
    logging.getLogger("dagster").setLevel(level)
    if not verbose:
        warnings.filterwarnings("ignore", module=r"dagster(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning)


def _user_message(exc: BaseException) -> str:
    """One line for an error, naming the file, URL or package involved."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, ImportError):
        return f"an optional package is missing: {exc}"
    if isinstance(exc, yaml.YAMLError):
        return f"not valid YAML ({exc})"
    if isinstance(exc, OSError | ValueError | RuntimeError):  # ConfigError, DataRootError, ReportInputError …
        return str(exc)
    return f"{type(exc).__name__}: {exc} (unexpected; run with --verbose for the traceback)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    args.verbose = verbose
    _quiet(verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # DataRootError, ConfigError, OSError …: one line, not a traceback
        if verbose:
            raise
        print(f"error: {_user_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
