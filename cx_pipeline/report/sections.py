"""The six sections of a brand's report, each answering one question with a chart and the numbers behind it.

Every figure is read from a scored dataset as stored (no recomputation of what a dataset already holds), so the
page and ``scored/cx_metrics`` cannot disagree; where a value is derived here (counts, freshness, sources of
example comments) the section says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from cx_pipeline.report import charts
from cx_pipeline.report.charts import BLUE, GREEN, GREY, ORANGE, RED, Bar, Point, Series
from cx_pipeline.report.data import ReportData
from cx_pipeline.report.html import Cell, esc, fmt, interval, pct, section, table

HEADLINE_METRICS = ("nps", "csat", "ces", "star_rating")
METRIC_TITLES = {"nps": "NPS", "csat": "CSAT (top-2-box)", "ces": "CES (% easy)", "star_rating": "Star rating",
                 "rating": "Rating", "sentiment": "Net sentiment"}
# decimals a metric's value is shown with (and compared with in the browser test)
DIGITS = {"star_rating": 2}
LIMITS = {"nps": (-100.0, 100.0), "csat": (0.0, 100.0), "ces": (0.0, 100.0), "star_rating": (1.0, 5.0)}
WARN_HOURS, FAIL_HOURS = 26, 36  # the scored assets' freshness policy
MAX_SKIPPED_ROWS = 300


def digits(metric: str) -> int:
    return DIGITS.get(metric, 1)


def _brand(frame: pl.DataFrame | None, brand: str) -> pl.DataFrame:
    if frame is None or "brand" not in frame.columns:
        return pl.DataFrame()
    return frame.filter(pl.col("brand") == brand)


def _low_n(flag: Any) -> Cell:
    return Cell('<span class="lown">low n</span>' if flag else "", raw=True)


# -- 1 headline --------------------------------------------------------------------------------------------------
def headline_rows(metrics: pl.DataFrame, brand: str) -> pl.DataFrame:
    """The month rows the headline shows: source all, touchpoint overall (the pooled ``all`` where a metric has
    no overall question, e.g. CSAT asked per touchpoint)."""
    rows = metrics.filter((pl.col("brand") == brand) & (pl.col("source") == "all")
                          & pl.col("metric").is_in(HEADLINE_METRICS))
    picked = []
    for metric in HEADLINE_METRICS:
        m = rows.filter(pl.col("metric") == metric)
        for touchpoint in ("overall", "all"):
            t = m.filter(pl.col("touchpoint") == touchpoint)
            if t.height:
                picked.append(t)
                break
    if not picked:
        return rows.head(0)
    return pl.concat(picked)


def headline(data: ReportData, brand: str) -> tuple[str, dict[str, float]]:
    rows = headline_rows(data["scored/cx_metrics"], brand)
    months = rows.filter(pl.col("grain") == "month").sort("period")
    whole = rows.filter(pl.col("grain") == "all")
    series, cards, tables, numbers = [], [], [], {}
    for metric in HEADLINE_METRICS:
        m = months.filter(pl.col("metric") == metric)
        if not m.height:
            continue
        pts = list(m.iter_rows(named=True))  # this metric's own months: no empty months from other metrics
        unit = m["unit"][0]
        tp = m["touchpoint"][0]
        series.append(Series(
            title=f"{METRIC_TITLES[metric]} ({'pooled touchpoints' if tp == 'all' else tp})",
            unit=unit.split(" (")[0],
            periods=[r["period"] for r in pts],
            values=[r["value"] for r in pts],
            lows=[r["ci_low"] for r in pts],
            highs=[r["ci_high"] for r in pts],
            low_n=[bool(r["low_n"]) for r in pts],
            limits=LIMITS.get(metric),
        ))
        d = digits(metric)
        w = whole.filter(pl.col("metric") == metric)
        if w.height:
            r = w.row(0, named=True)
            numbers[f"{metric}_all"] = r["value"]
            cards.append(
                f'<div class="card" data-metric="{metric}" data-grain="all"><div>{esc(METRIC_TITLES[metric])}</div>'
                f'<div class="big">{fmt(r["value"], d)}</div>'
                f'<div class="sub">95% CI {interval(r["ci_low"], r["ci_high"], d)} · n {r["n"]} · '
                f'{r["n_respondents"]} respondents{" · <span class=lown>low n</span>" if r["low_n"] else ""}</div>'
                f'<div class="sub">all periods · {esc(tp)} · {esc(unit)}</div></div>'
            )
        last = m.row(m.height - 1, named=True)
        numbers[f"{metric}_latest"] = last["value"]
        body = []
        meta = []
        for r in m.iter_rows(named=True):
            key = {"metric": metric, "touchpoint": r["touchpoint"], "source": "all", "grain": "month",
                   "period": r["period"]}
            meta.append(key)
            body.append([
                r["period"],
                Cell(fmt(r["value"], d), num=True, data={"col": "value"}),
                Cell(interval(r["ci_low"], r["ci_high"], d), num=True, data={"col": "ci"}),
                Cell(fmt(r["n"]), num=True, data={"col": "n"}),
                Cell(fmt(r["n_respondents"]), num=True, data={"col": "n_respondents"}),
                Cell(fmt(r["design_effect"], 2), num=True),
                _low_n(r["low_n"]),
            ])
        tables.append(f"<h3>{esc(METRIC_TITLES[metric])} per month <span class=note>({esc(unit)}; touchpoint "
                      f"{esc(tp)}; all sources)</span></h3>"
                      + table(["month", "value", "95% CI", "n", "respondents", "design effect", ""], body,
                              cls="headline", row_data=meta))
    if not series:
        chart = charts.message_chart("Headline metrics per month", "no NPS, CSAT, CES or star answers for this brand")
        body_html = '<p class="note">This brand has no NPS, CSAT, CES or star-rating answers yet.</p>'
    else:
        chart = charts.trend_chart("Headline metrics per month with 95% confidence bands", series)
        body_html = f'<div class="cards">{"".join(cards)}</div>' + "".join(tables)
    html = section(
        "headline", "1. Headline",
        "How are we doing, month by month, and how sure are we?",
        chart,
        "Line: value per month; band and whiskers: 95% interval; hollow markers: low n (fewer than 30 respondents). "
        "From scored/cx_metrics (source all).",
        body_html,
    )
    return html, numbers


# -- 2 drivers ---------------------------------------------------------------------------------------------------
def drivers(data: ReportData, brand: str) -> str:
    kd = _brand(data.get("scored/key_drivers"), brand)
    if kd.height:
        kd = kd.filter(pl.col("grain") == "all")
    shap = kd.filter((pl.col("method") == "shapley_regression") & pl.col("importance").is_not_null()) \
        if kd.height else kd
    text = kd.filter((pl.col("method") == "text_impact") & pl.col("impact").is_not_null()) if kd.height else kd
    notes = kd.filter(pl.col("note").is_not_null()) if kd.height else kd
    points = []
    if shap.height:
        for r in shap.sort("rank", nulls_last=True).iter_rows(named=True):
            points.append(Point(charts.clean_label(r["touchpoint"]), r["importance_share"] or 0.0,
                                r["performance"] if r["performance"] is not None else 0.0,
                                *_share_interval(r), charts.QUADRANT_COLOURS.get(r["quadrant"] or "", GREY)))
    x_split = 1.0 / shap.height if shap.height else None
    y_split = float(shap["performance"].mean()) if shap.height else None  # type: ignore[arg-type]
    # text impact beside it: the outcome with most mentions (the table lists every outcome)
    side_bars: list[Bar] = []
    side_outcome = ""
    if text.height:
        side_outcome = text.group_by("outcome").agg(pl.col("n").max()).sort("n", descending=True)["outcome"][0]
        for r in text.filter(pl.col("outcome") == side_outcome).sort("impact").iter_rows(named=True):
            side_bars.append(Bar(f"{r['touchpoint']} ({r['n_mentions']})", r["impact"], r["ci_low"], r["ci_high"],
                                 GREY if r["rank"] is None else RED if r["impact"] < 0 else GREEN))
    if not points and not side_bars:
        chart = charts.message_chart("Key drivers", "no key drivers for this brand (see the notes)")
    else:
        chart = charts.quadrant_chart(
            "Key drivers: importance by performance, and text impact", points, x_split, y_split,
            "Importance × performance (Shapley)", "share of explained variance", "performance (mean score, 0..1)",
            side=(f"Text impact on {side_outcome}", "points of the outcome (0..100)", side_bars),
        )
    body = []
    if shap.height:
        r2 = shap["r2"].drop_nulls()
        outcome = shap["outcome"][0]
        r2_text = fmt(r2[0] if len(r2) else None, 3)
        body.append(f"<h3>Shapley regression on {esc(outcome)} <span class=note>(R² {r2_text},"
                    f" n {shap['n'].max()} complete answers)</span></h3>")
        body.append(table(
            ["rank", "touchpoint", "importance (R² share)", "importance (R²) [95% CI]", "performance", "quadrant", "n"],
            [[r["rank"], r["touchpoint"], Cell(pct(r["importance_share"]) + " %", num=True),
              Cell(f"{fmt(r['importance'], 3)} {interval(r['ci_low'], r['ci_high'], 3)}", num=True),
              Cell(fmt(r["performance"], 2), num=True), r["quadrant"] or "", Cell(fmt(r["n"]), num=True)]
             for r in shap.sort("rank", nulls_last=True).iter_rows(named=True)],
        ))
    if text.height:
        body.append("<h3>Text impact <span class=note>(score of all records − score without the records whose text "
                    "names the touchpoint; negative drags the score down)</span></h3>")
        body.append(table(
            ["outcome", "touchpoint", "impact [95% CI]", "records mentioning", "records", "rank", "note"],
            [[r["outcome"], r["touchpoint"],
              Cell(f"{fmt(r['impact'], 1, signed=True)} {interval(r['ci_low'], r['ci_high'])}", num=True),
              Cell(fmt(r["n_mentions"]), num=True), Cell(fmt(r["n"]), num=True), r["rank"] if r["rank"] else "",
              Cell(r["note"] or "", cls="note")]
             for r in text.sort("outcome", "rank", "impact", nulls_last=True).iter_rows(named=True)],
        ))
    general = notes.filter(pl.col("touchpoint") == "all") if notes.height else notes
    if general.height:
        body.append("<p class=note>" + "<br>".join(esc(f"{r['method']} / {r['outcome']}: {r['note']}")
                                                   for r in general.iter_rows(named=True)) + "</p>")
    if not body:
        body.append('<p class="note">No key drivers for this brand yet.</p>')
    return section(
        "drivers", "2. What matters",
        "Which touchpoints matter most for the outcome, how well do we perform on them, and how sure are we?",
        chart,
        "Left: each touchpoint's share of the explained variance (whisker: bootstrap 95% interval) against its "
        "performance; dashed lines: the splits the quadrants use (equal share, mean performance); red fix first, "
        "green keep up, orange monitor, blue maintain. Right: text impact with 95% interval (grey: not ranked, "
        "fewer than 10 mentioning records). From scored/key_drivers (all periods).",
        "".join(body),
    )


def _share_interval(r: dict[str, Any]) -> tuple[float | None, float | None]:
    """The bootstrap interval is on importance (R²); the chart's x is the share, so scale it the same way."""
    if r["importance"] and r["importance_share"] and r["ci_low"] is not None and r["ci_high"] is not None:
        scale = r["importance_share"] / r["importance"]
        return max(r["ci_low"] * scale, 0.0), min(r["ci_high"] * scale, 1.0)  # a share stays within 0..1
    return None, None


# -- 3 peaks and potholes ----------------------------------------------------------------------------------------
def _example_sources(data: ReportData, brand: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Where an example comment came from: the examples are stored as text only, so look the text up in the
    brand's mentions (clause) and events (text)."""
    by_clause: dict[str, str] = {}
    mentions = _brand(data.get("scored/touchpoint_mentions"), brand)
    if mentions.height:
        for clause, source in mentions.select("clause", "source").unique().iter_rows():
            if clause:
                by_clause.setdefault(clause, source)
    events = _brand(data.get("scored/scored_events"), brand)
    texts: list[tuple[str, str]] = []
    if events.height:
        texts = [(t, s) for t, s in events.select("text", "source").unique().iter_rows() if t]
    return by_clause, texts


def _source_of(example: str, by_clause: dict[str, str], texts: list[tuple[str, str]]) -> str:
    if example in by_clause:
        return by_clause[example]
    for part in example.split(" | "):
        if part in by_clause:
            return by_clause[part]
        for text, source in texts:
            if part and part in text:
                return source
    return "source not found"


def _examples_cell(examples: list[str] | None, by_clause: dict[str, str], texts: list[tuple[str, str]]) -> Cell:
    if not examples:
        return Cell("")
    items = "".join(f'<li>“{esc(e)}” <span class="src">— {esc(_source_of(e, by_clause, texts))}</span></li>'
                    for e in examples)
    return Cell(f'<ul class="examples">{items}</ul>', raw=True)


def peaks(data: ReportData, brand: str) -> str:
    pp = _brand(data.get("scored/peaks_potholes"), brand)
    whole = pp.filter(pl.col("grain") == "all").sort("rank", "net_lower", nulls_last=True, descending=[False, True]) \
        if pp.height else pp
    bars_peak, bars_hole = [], []
    for r in whole.iter_rows(named=True):
        label = f"{r['touchpoint']} (n {r['n']})"
        bars_peak.append(Bar(label, 100 * r["peak_rate"], 100 * r["peak_ci_low"], 100 * r["peak_ci_high"], GREEN))
        bars_hole.append(Bar(label, 100 * r["pothole_rate"], 100 * r["pothole_ci_low"], 100 * r["pothole_ci_high"],
                             RED))
    chart = charts.bar_panels(
        "Peaks and potholes per touchpoint with 95% intervals",
        [("Peak rate", "% of units", bars_peak), ("Pothole rate", "% of units", bars_hole)],
    )
    by_clause, texts = _example_sources(data, brand)

    def rows(frame: pl.DataFrame) -> list[list[Any]]:
        return [[r["rank"] or "", r["touchpoint"], Cell(fmt(r["n"]), num=True),
                 Cell(f"{pct(r['peak_rate'])} % {interval(r['peak_ci_low'], r['peak_ci_high'], scale=100)}",
                      num=True),
                 Cell(f"{pct(r['pothole_rate'])} % {interval(r['pothole_ci_low'], r['pothole_ci_high'], scale=100)}",
                      num=True),
                 Cell(fmt(100 * r["net_lower"], 1, signed=True) if r["net_lower"] is not None else "–", num=True),
                 _examples_cell(r["pothole_examples"], by_clause, texts),
                 _examples_cell(r["peak_examples"], by_clause, texts)]
                for r in frame.iter_rows(named=True)]

    headers = ["rank", "touchpoint", "n", "peak rate [95% CI]", "pothole rate [95% CI]", "net supported",
               "pothole examples", "peak examples"]
    body = [table(headers, rows(whole), caption="All periods, ranked by the net rate the data supports "
                                                 "(Wilson lower bound of peaks − upper bound of potholes); "
                                                 "unranked below 10 units.")]
    months = pp.filter(pl.col("grain") == "month") if pp.height else pp
    if months.height:
        latest = months["period"].max()
        last = months.filter(pl.col("period") == latest).sort("pothole_rate", descending=True)
        body.append(f"<h3>Latest month: {esc(latest)}</h3>")
        body.append(table(headers, rows(last)))
    return section(
        "peaks", "3. Peaks and potholes",
        "Where do customers have their best and worst moments, with what words?",
        chart,
        "Share of units (record × touchpoint) that are peaks (top score with strongly positive words) or potholes "
        "(bottom score or strongly negative words about the touchpoint); whiskers: Wilson 95% interval. "
        "From scored/peaks_potholes; comments are redacted clauses, their source looked up in the mentions.",
        "".join(body),
    )


# -- 4 what changed ----------------------------------------------------------------------------------------------
def _series(r: dict[str, Any]) -> str:
    return f"{r['metric']} · {r['touchpoint']} · {r['source']} · {r['grain']}"


def changes(data: ReportData, brand: str) -> str:
    tests = _brand(data.get("scored/alert_tests"), brand)
    alerts = _brand(data.get("scored/cx_alerts"), brand)
    tested = tests.filter(pl.col("status") == "tested").sort("p_value") if tests.height else tests
    bars = [Bar(charts.clean_label(f"{r['metric']} {r['touchpoint']} {r['source']} {r['period']}"), r["z"],
                colour=RED if r["flagged"] else BLUE if r["z"] >= 0 else ORANGE)
            for r in tested.head(25).iter_rows(named=True)]
    skipped = tests.filter(pl.col("status") == "skipped") if tests.height else tests
    skip_bars = [Bar(charts.clean_label(why), n, colour=GREY)
                 for why, n in _counts(skipped.with_columns(pl.col("reason").str.replace(r" \(.*", "")), "reason")]
    panels = [("Tested changes, z", "z (below −1.96: a drop at 5% before the FDR correction)", bars),
              ("Not tested, by reason", "series × periods", skip_bars)]
    chart = charts.bar_panels("Period-over-period drop tests: tested changes (z) and skipped tests by reason",
                              panels, zero_line=True, width=4.6)
    body = []
    if alerts.height:
        body.append("<h3 class=flag>Significant drops</h3><ul>" + "".join(
            f"<li class=flag>{esc(m)}</li>" for m in alerts["message"].to_list()) + "</ul>")
    else:
        body.append('<p class="ok">No significant drop (Benjamini–Hochberg, FDR 5%).</p>')
    if tested.height:
        body.append("<h3>Tested</h3>" + table(
            ["series", "period", "previous", "current", "change", "z", "p", "BH-adjusted p", "n", "respondents", ""],
            [[_series(r), f"{r['previous_period']} → {r['period']}", Cell(fmt(r["previous_value"], 2), num=True),
              Cell(fmt(r["current_value"], 2), num=True), Cell(fmt(r["diff"], 2, signed=True), num=True),
              Cell(fmt(r["z"], 2), num=True), Cell(fmt(r["p_value"], 3), num=True),
              Cell(fmt(r["p_adjusted"], 3), num=True), Cell(f"{r['n_previous']} → {r['n_current']}", num=True),
              Cell(f"{r['respondents_previous']} → {r['respondents_current']}", num=True),
              Cell("alert" if r["flagged"] else "", cls="flag")]
             for r in tested.iter_rows(named=True)]))
    if skipped.height:
        why = (skipped.with_columns(pl.col("reason").str.replace(r" \(.*", "").alias("why"))
               .group_by("why", "grain").len().sort("len", descending=True))
        body.append("<h3>Not tested, and why</h3>" + table(
            ["reason", "grain", "series × periods"], [[r[0], r[1], Cell(fmt(r[2]), num=True)] for r in why.rows()]))
        shown = skipped.sort("grain", "period", descending=[False, True]).head(MAX_SKIPPED_ROWS)
        more = f" (first {MAX_SKIPPED_ROWS} of {skipped.height}; all in scored/alert_tests)" \
            if skipped.height > MAX_SKIPPED_ROWS else ""
        body.append(f"<details><summary>Every skipped series × period{esc(more)}</summary>" + table(
            ["series", "period", "reason"], [[_series(r), r["period"], r["reason"]]
                                             for r in shown.iter_rows(named=True)]) + "</details>")
    return section(
        "changes", "4. What changed",
        "What got significantly worse, and what could not be tested?",
        chart,
        "Left: z of each tested change from the previous period (red: flagged after Benjamini–Hochberg across the "
        "run's tests; the 25 smallest p). Right: the series × periods that were not tested, by reason. "
        "From scored/alert_tests and scored/cx_alerts; series are skipped with fewer than 20 respondents, "
        "in their first period or after a gap.",
        "".join(body),
    )


# -- 5 replies ---------------------------------------------------------------------------------------------------
def replies(data: ReportData, brand: str) -> str:
    rl = _brand(data.get("scored/reply_latency"), brand)
    months = rl.filter(pl.col("grain") == "month").sort("period") if rl.height else rl
    series = []
    if months.height:
        periods = sorted(months["period"].unique().to_list())
        for source in sorted(months["source"].unique().to_list()):
            by = {r["period"]: r for r in months.filter(pl.col("source") == source).iter_rows(named=True)}
            rows = [by.get(p) for p in periods]
            series.append(Series(f"Reply rate — {source}", "% of reviews replied", periods,
                                 [100 * r["reply_rate"] if r else None for r in rows],
                                 [100 * r["reply_rate_ci_low"] if r else None for r in rows],
                                 [100 * r["reply_rate_ci_high"] if r else None for r in rows],
                                 [bool(r["low_n"]) if r else False for r in rows], limits=(0, 100)))
            series.append(Series(f"Hours to reply — {source}", "hours (median; band to p90)", periods,
                                 [r["median_hours"] if r else None for r in rows],
                                 [r["median_hours"] if r else None for r in rows],
                                 [r["p90_hours"] if r else None for r in rows],
                                 [bool(r["low_n"]) if r else False for r in rows]))
    chart = charts.trend_chart("Reply rate and time to reply per month", series, colours=(BLUE, ORANGE)) \
        if series else charts.message_chart("Reply rate", "no public reviews for this brand")
    body = table(
        ["period", "source", "reviews", "replied", "reply rate [95% CI]", "median h", "p90 h", "mean h", ""],
        [[r["period"], r["source"], Cell(fmt(r["reviews"]), num=True), Cell(fmt(r["replied"]), num=True),
          Cell(f"{pct(r['reply_rate'])} % {interval(r['reply_rate_ci_low'], r['reply_rate_ci_high'], scale=100)}",
               num=True),
          Cell(fmt(r["median_hours"]), num=True), Cell(fmt(r["p90_hours"]), num=True),
          Cell(fmt(r["mean_hours"]), num=True), _low_n(r["low_n"])]
         for r in rl.sort("source", "grain", "period").iter_rows(named=True)],
    ) if rl.height else '<p class="note">No public reviews for this brand.</p>'
    return section(
        "replies", "5. Customer service in public",
        "How often and how fast do we reply to public reviews?",
        chart,
        "Reply rate with its Wilson 95% interval, and hours from publication to reply (line: median, band up to the "
        "90th percentile); hollow markers: fewer than 30 reviews. From scored/reply_latency.",
        body,
    )


# -- 6 coverage and trust ----------------------------------------------------------------------------------------
def _counts(frame: pl.DataFrame, column: str) -> list[tuple[str, int]]:
    if not frame.height:
        return []
    return [(str(k) if k is not None else "unknown", int(v))
            for k, v in frame.group_by(column).len().sort("len", descending=True).iter_rows()]


def coverage(data: ReportData, brand: str, now: datetime) -> str:
    events = _brand(data.get("scored/scored_events"), brand)
    live = events.filter(~pl.col("is_removed").fill_null(False)) if events.height else events
    panels = [("Events per source", "events", [Bar(k, v, colour=BLUE) for k, v in _counts(live, "source")]),
              ("per language", "events", [Bar(k, v, colour=GREEN) for k, v in _counts(live, "language")]),
              ("per touchpoint", "events", [Bar(k, v, colour=ORANGE) for k, v in _counts(live, "touchpoint")])]
    chart = charts.bar_panels("Events per source, language and touchpoint", panels, width=3.2)
    body = []
    if events.height:
        per_source = events.group_by("source", "source_kind").agg(
            events=pl.len(), records=pl.col("record_id").n_unique(),
            removed=pl.col("is_removed").fill_null(False).sum(), texts=pl.col("sentiment").is_not_null().sum(),
            first=pl.coalesce("occurred_at", "published_at").min(),
            last=pl.coalesce("occurred_at", "published_at").max(),
            ingested=pl.col("ingested_at").max(),
        ).sort("source")
        rows = []
        for r in per_source.iter_rows(named=True):
            age = (now - r["ingested"]).total_seconds() / 3600 if r["ingested"] else None
            status = ("–" if age is None else "fresh" if age <= WARN_HOURS
                      else "warn" if age <= FAIL_HOURS else "stale")
            rows.append([r["source"], r["source_kind"], Cell(fmt(r["events"]), num=True),
                         Cell(fmt(r["records"]), num=True), Cell(fmt(r["removed"]), num=True),
                         Cell(fmt(r["texts"]), num=True), _day(r["first"]), _day(r["last"]),
                         _minute(r["ingested"]), Cell(f"{fmt(age)} h", num=True),
                         Cell(status, cls="ok" if status == "fresh" else "lown")])
        body.append("<h3>Coverage and freshness</h3>" + table(
            ["source", "kind", "events", "records", "removed", "scored texts", "first experience", "last experience",
             "last ingested (UTC)", "age at build", "freshness"], rows,
            caption=f"Freshness as the scored datasets' policy: warn after {WARN_HOURS} h, stale after {FAIL_HOURS} h "
                    "since the last ingestion."))
        versions = events.group_by("source", "parser", "schema_version", "taxonomy_version", "sentiment_method",
                                   "text_method_version").len().sort("source", "len", descending=[False, True])
        body.append("<h3>Method versions</h3>" + table(
            ["source", "parser", "contract", "taxonomy", "sentiment method", "text method", "events"],
            [[*[v if v is not None else "– (no text)" for v in r[:-1]], Cell(fmt(r[-1]), num=True)]
             for r in versions.rows()]))
    body.append("<h3>Data-quality checks</h3>" + table(["check", "result", "detail"], quality_checks(data, brand)))
    return section(
        "coverage", "6. Coverage and trust",
        "What is this based on, how fresh is it, and can we trust it?",
        chart,
        "Events (not removed) per source, language and touchpoint, from scored/scored_events; checks recomputed "
        "from the stored datasets at build time.",
        "".join(body),
    )


def _day(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d") if ts else "–"


def _minute(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M") if ts else "–"


def quality_checks(data: ReportData, brand: str) -> list[list[Any]]:
    """Checks a reader of the report can rely on without the Dagster UI: schemas, the event contract, keys,
    crawl outcomes and language agreement, each with what it found."""
    from cx_pipeline.contract import COLUMN_NAMES, contract_violations
    from cx_pipeline.pipeline.dataset_catalog import CATALOG

    rows: list[list[Any]] = []

    def result(passed: bool, warn: bool = False) -> Cell:
        text = "pass" if passed else "warn" if warn else "FAIL"
        return Cell(text, cls="ok" if passed else "lown" if warn else "flag")

    for ds in CATALOG:
        frame = data.get(ds.path)
        if frame is None or not ds.schema:
            continue
        missing = [c for c in ds.schema if c not in frame.columns]
        extra = [c for c in frame.columns if c not in ds.schema and ds.path != "scored/scored_events"]
        rows.append([f"{ds.path}: columns as declared", result(not missing and not extra),
                     f"{frame.height} rows" + (f"; missing {missing}" if missing else "")
                     + (f"; unexpected {extra}" if extra else "")])
    events = _brand(data.get("scored/scored_events"), brand)
    if events.height:
        problems = contract_violations(events.select([c for c in COLUMN_NAMES if c in events.columns]))
        rows.append(["scored_events: touchpoint-event contract", result(not problems), "; ".join(problems) or "ok"])
        dupes = events.height - events["event_id"].n_unique()
        rows.append(["scored_events: one row per event_id", result(dupes == 0), f"{dupes} duplicate(s)"])
        if "language_declared" in events.columns:
            overridden = events.filter(pl.col("language_declared").is_not_null()
                                       & (pl.col("language") != pl.col("language_declared"))).height
            texts = events.filter(pl.col("text").is_not_null()).height
            rows.append(["language: declared language agrees with the text", result(overridden == 0, warn=True),
                         f"{overridden} of {texts} texts detected as another language than declared"])
    metrics = _brand(data.get("scored/cx_metrics"), brand)
    if metrics.height:
        key = ["touchpoint", "source", "grain", "period", "metric"]
        dupes = metrics.height - metrics.select(key).n_unique()
        rows.append(["cx_metrics: one row per touchpoint × source × period × metric", result(dupes == 0),
                     f"{metrics.height} rows, {dupes} duplicate(s)"])
        off_scale = 0
        for metric, (lo, hi) in LIMITS.items():
            if metric != "star_rating":  # stars: the source's own scale, not always 1..5
                off_scale += metrics.filter((pl.col("metric") == metric)
                                            & ((pl.col("ci_low") < lo - 1e-9) | (pl.col("ci_high") > hi + 1e-9))).height
        rows.append(["cx_metrics: intervals stay on their scale (NPS ±100, percentages 0..100)",
                     result(off_scale == 0), f"{off_scale} outside"])
        outside = metrics.filter((pl.col("value") < pl.col("ci_low") - 1e-9)
                                 | (pl.col("value") > pl.col("ci_high") + 1e-9))
        rows.append(["cx_metrics: value inside its interval", result(outside.height == 0, warn=True),
                     f"{outside.height} of {metrics.height} rows, at n ≤ {outside['n'].max() or 0}: adjusted "
                     "intervals are centred away from the raw value at very small n; read such values as noise"])
        low = metrics.filter(pl.col("low_n") & (pl.col("grain") == "month")).height
        months = metrics.filter(pl.col("grain") == "month").height
        rows.append(["cx_metrics: months with enough respondents (≥ 30)", result(low == 0, warn=True),
                     f"{low} of {months} monthly values are low n"])
    pages = data.get("raw/review_pages")
    if pages is not None and pages.height and "outcome" in pages.columns:
        bad = pages.filter(pl.col("outcome").is_in(["blocked", "changed", "error"]))
        detail = ", ".join(f"{k} {v}" for k, v in _counts(pages, "outcome"))
        rows.append(["review crawl: no blocked, changed or failed pages (all sources)", result(bad.height == 0),
                     detail])
    return rows


def built_at() -> datetime:
    return datetime.now(UTC)
