"""Figures, the HTML report, export, and fits shipped by other packages."""

import base64
import dataclasses
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import advisor
from advisor.cli import main

pytest.importorskip("matplotlib")

from calibration import report  # noqa: E402

SIMBA = "simbav2_model_scaling_linear20_with_base.zip"


@pytest.fixture(scope="module")
def simba_ctx(data_dir):
    return report.load_context("simbav2/h1-crawl-v0", data_dir / SIMBA,
                               advisor.Budget(compute=1e17), n_boot=10)


@pytest.mark.parametrize("kind", report.KINDS)
def test_every_figure_renders_from_simbav2(kind, simba_ctx, tmp_path):
    out = report.save_figure(kind, simba_ctx, tmp_path / f"{kind}.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize("fit_id, archive", [("bro/h1-crawl-v0", "fitted_bs.zip"),
                                             ("bro/dog-run", "dmc_bro_ablations.zip")])
def test_fit_figures_render_for_other_archives(fit_id, archive, data_dir, tmp_path):
    ctx = report.load_context(fit_id, data_dir / archive, n_boot=5)
    for kind in ("data", "frontier", "batch"):
        assert report.save_figure(kind, ctx, tmp_path / f"{kind}.png").stat().st_size > 10_000


def test_batch_figure_marks_the_batch_sizes_a_fitted_bs_fit_was_fitted_to(data_dir):
    ctx = report.load_context("bro/h1-pole-v0", data_dir / "fitted_bs.zip", n_boot=5)
    ax = report.figure_batch(ctx).axes[0]
    assert "crosses: the batch sizes the runs used" in ax.get_title()
    crosses = [x for line in ax.get_lines() if line.get_marker() == "x"
               for x in line.get_ydata()]
    assert len(crosses) == 16 and min(crosses) == 48 and max(crosses) == 768


def test_td_figure_from_side_critic_archive(data_dir, tmp_path):
    ctx = report.load_context("bro/h1-pole-v0", data_dir / "side_critic.zip")
    assert report.save_figure("td", ctx, tmp_path / "td.png").stat().st_size > 10_000


def test_figures_without_runs_say_what_is_missing():
    ctx = report.load_context("bro/h1-stand-v0")
    with pytest.raises(report.ReportError, match=r"pass --runs ARCHIVE_OR_DIR \(this fit was "
                                                 r"made from fitted_bs.zip\)$"):
        report.figure_parity(ctx)
    with pytest.raises(report.ReportError, match="validation_critic_loss"):
        report.figure_td(ctx)


def test_the_held_out_refits_are_made_once_per_context(data_dir, monkeypatch):
    """The parity figure refits the law once per configuration (about a minute for a large
    archive); a report drawn after the figure, or a second figure, reuses those predictions."""
    from calibration import fitting

    calls = []
    real = fitting.leave_one_config_out

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fitting, "leave_one_config_out", counted)
    ctx = report.load_context("bro/h1-pole-v0", data_dir / "fitted_bs.zip", n_boot=5)
    first = report.figure_parity(ctx).axes[0].get_title()
    assert calls == [1] and ctx.held_out is not None
    assert report.figure_parity(ctx).axes[0].get_title() == first and calls == [1]
    assert report.load_context("bro/h1-pole-v0", data_dir / "fitted_bs.zip").held_out is None


@pytest.fixture(scope="module")
def simba_page(simba_ctx, tmp_path_factory):
    """The report of simba_ctx as written to a file (drawn once for the tests that read it)."""
    return report.write_report(simba_ctx, tmp_path_factory.mktemp("report") / "r.html").read_text()


def test_report_is_one_offline_html_with_every_image(simba_page):
    text = simba_page
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,', text)
    assert images == list(report.KINDS)
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "Recommended" in text
    assert re.search(r"<p>Near-optimal: utd [\d.]+-[\d.]+, width \d+-\d+ ", text)


def test_the_frontier_shades_the_near_optimal_configurations(simba_ctx):
    """The first figure shades rec.near_optimal's set: its extent on the figure is that of
    the ranges recommend gives (to the 300-point grid's step)."""
    fig = report.figure_frontier(simba_ctx)
    ax = fig.axes[0]
    assert any("near-optimal" in t.get_text() for t in ax.get_legend().get_texts())
    shaded = [c for c in ax.collections if hasattr(c, "get_paths") and c.get_paths()
              and type(c).__name__ in ("QuadContourSet", "PathCollection", "ContourSet")]
    verts = np.concatenate([p.vertices for c in shaded for p in c.get_paths()
                            if len(p.vertices)])
    near = simba_ctx.rec.near_optimal
    assert verts[:, 1].min() == pytest.approx(near.utd_low, rel=0.06)
    assert verts[:, 1].max() == pytest.approx(near.utd_high, rel=0.06)
    assert verts[:, 0].max() == pytest.approx(near.params_high, rel=0.12)


def test_the_report_of_a_few_shot_fit_names_its_prior_and_its_notes(tmp_path):
    """bro-torch/Hopper-v5's page said neither that its exponents are the dmc family's nor
    what the fit is good for."""
    ctx = report.load_context("bro-torch/Hopper-v5")
    text = report.render_report(ctx)
    assert "prior: dmc: bro/acrobot-swingup" in text
    assert "<summary>notes (" in text and "few-shot on purpose" in text
    assert "short runs, low thresholds" in text


def _opens_in_a_browser(text: str) -> None:
    """The HTML parses with no error under html5lib's strict mode (the WHATWG parsing algorithm
    browsers follow, raising where a browser would silently repair), and every image embedded
    in it decodes as a PNG (matplotlib's reader) with a real picture in it."""
    html5lib = pytest.importorskip("html5lib")
    from matplotlib.image import imread

    html5lib.HTMLParser(strict=True).parse(text)
    images = re.findall(r'src="data:image/png;base64,([^"]*)"', text)
    assert images, "no embedded image"
    for data in images:
        pixels = imread(io.BytesIO(base64.b64decode(data, validate=True)), format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 100
        assert np.ptp(pixels[..., :3]) > 0  # not a blank canvas


def test_reports_open_in_a_browser(simba_page):
    """The report of an archive fit with its runs, of a few-shot fit without them, and the pages
    shipped in docs/ (an old page would not be regenerated by the other cases)."""
    pages = [simba_page,
             report.render_report(report.load_context("bro-torch/Hopper-v5"))]
    pages += [p.read_text() for p in sorted((Path(__file__).parents[1] / "docs").glob("*.html"))]
    assert len(pages) >= 4
    for text in pages:
        _opens_in_a_browser(text)


def test_the_browser_check_fails_on_broken_html():
    """_opens_in_a_browser is not a check that cannot fail."""
    pytest.importorskip("html5lib")
    from matplotlib.figure import Figure

    good = ('<!doctype html><html><head><title>t</title></head><body><img alt="x" '
            'src="data:image/png;base64,{}"></body></html>')
    buf = io.BytesIO()
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(buf, format="png")
    png = base64.b64encode(buf.getvalue()).decode()
    cut = base64.b64encode(buf.getvalue()[:len(buf.getvalue()) // 2]).decode()
    _opens_in_a_browser(good.format(png))
    for bad in (good.format(png).replace("<body>", "<body></p>"),  # a stray end tag
                good.format(png).replace("<!doctype html>", ""),  # quirks mode
                good.format(cut)):  # half an image, well encoded
        with pytest.raises(Exception):
            _opens_in_a_browser(bad)


def test_cli_report_and_plot(data_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["plot", "frontier", "bro/h1-crawl-v0", "--compute", "1e17", "-o",
                               str(tmp_path / "f.png")])
    assert res.exit_code == 0 and (tmp_path / "f.png").exists()
    res = runner.invoke(main, ["plot", "parity", "bro/h1-crawl-v0", "-o", str(tmp_path / "p.png")])
    assert res.exit_code == 2 and "--runs" in res.output
    res = runner.invoke(main, ["report", "bro/h1-stand-v0", "--runs",
                               str(data_dir / "fitted_bs.zip"), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") == len(report.KINDS)
    assert "not drawn" not in res.output
    _opens_in_a_browser((tmp_path / "r.html").read_text())
    # Without --runs the page says which figures it could not draw, and so does the terminal
    # (a new user's: the README's example exited 0 with two figures missing, unsaid).
    res = runner.invoke(main, ["report", "bro/humanoid-stand", "--total", "1e17", "--target",
                               "600", "-o", str(tmp_path / "bare.html")])
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.output.splitlines() if ln.startswith("note: the ")]
    assert [ln.split()[2] for ln in notes] == ["parity", "td"], notes
    assert "pass --runs" in notes[0]
    assert (tmp_path / "bare.html").read_text().count("Not drawn: ") == 2


def test_report_and_plot_take_the_options_their_warnings_name(tmp_path, monkeypatch):
    """A hostile round: the report's recommendation warned "(--within-fitted, ... searches
    inside it)", an option `advisor report` did not have; report and plot now take it and
    --clear-of-runs, as recommend does, and mark what recommend answers with them."""
    seen = []
    real = report.recommend

    def spy(*args, **kwargs):
        seen.append(rec := real(*args, **kwargs))
        return rec

    monkeypatch.setattr(report, "recommend", spy)
    runner = CliRunner()
    res = runner.invoke(main, ["plot", "frontier", "bro/h1-crawl-v0", "--compute", "1e17",
                               "--within-fitted", "-o", str(tmp_path / "f.png")])
    assert res.exit_code == 0 and "--within-fitted" not in res.output, res.output
    inside = advisor.recommend(1e17, within_fitted=True)
    assert (seen[-1].utd, seen[-1].width) == (inside.utd, inside.width)
    assert not seen[-1].extrapolated and advisor.recommend(1e17).extrapolated
    res = runner.invoke(main, ["plot", "frontier", "bro/walker-run", "--data", "7.7e5",
                               "--clear-of-runs", "-o", str(tmp_path / "c.png")])
    assert res.exit_code == 0 and "warning: clear_of_runs: the law's answer" in res.output
    res = runner.invoke(main, ["report", "bro/h1-crawl-v0", "--within-fitted", "-o",
                               str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "--within-fitted applies to the marked recommendation: give " \
        "a budget too" in res.output and not (tmp_path / "r.html").exists()


def test_a_csv_whose_widths_are_not_the_fits_critic_is_told_so_not_to_pass_input_dim(
        tmp_path):
    """A hostile round: `plot parity FIT --runs runs.csv` said "check the critic's input size
    (--input-dim)", an option plot does not have (the fit's critic counts the widths)."""
    csv = tmp_path / "runs.csv"
    csv.write_text("utd,width,params,batch_size,seed,step,return\n"
                   "1,64,1000,256,0,1000,100\n1,64,1000,256,1,1000,100\n")
    res = CliRunner().invoke(main, ["plot", "parity", "bro/h1-crawl-v0", "--runs", str(csv),
                                    "-o", str(tmp_path / "p.png")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "--input-dim" not in res.output
    assert res.output.endswith("or check that these are the runs bro/h1-crawl-v0 was made from "
                               "(its critic turns widths into params)\n")


def test_a_report_keeps_a_users_page_at_its_path(tmp_path, monkeypatch):
    """`-o` defaults to report.html: a page of the user's of that name was replaced. It is now
    kept (one line, before a minute of drawing); an earlier report is replaced."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.html").write_text("<p>my notes</p>\n")
    res = CliRunner().invoke(main, ["report", "bro/h1-crawl-v0"])
    assert res.exit_code == 2 and res.output == (
        "error: -o report.html: report.html exists and is not a report advisor report wrote; it "
        "is left as it is: choose another path, or remove it first\n")
    assert (tmp_path / "report.html").read_text() == "<p>my notes</p>\n"
    ctx = report.load_context("bro/h1-crawl-v0")
    monkeypatch.setattr(report, "render_report", lambda *a, **k: report.REPORT_HEAD + "new")
    earlier = tmp_path / "earlier.html"
    for head in (report.REPORT_HEAD, "<!doctype html><html><head><meta charset='utf-8'><meta "
                 "name='viewport' content='width=device-width,initial-scale=1'><title>"):
        earlier.write_text(head + "x fit report</title></head></html>\n")  # (a review's:
        report.write_report(ctx, earlier)  # pages from before the generator tag, too)
        assert earlier.read_text().endswith("new")


def test_export_lists_one_entry_per_budget():
    """A budget the fit cannot meet keeps its entry, with the error, and is warned about on
    stderr; when none can be met, exit 2 and nothing on stdout."""
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e10,1e16,1e18",
                                    "--format", "json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)["budgets"]
    assert [r["compute"] for r in rows] == [1e10, 1e16, 1e18]
    assert "error" in rows[0] and rows[2]["width"] >= rows[1]["width"]
    assert res.stderr.count("warning: compute 1e+10 skipped") == 1
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e16,x"])
    assert res.exit_code == 2
    for fmt in ("json", "yaml"):
        res = CliRunner().invoke(main, ["export", "bro/humanoid-stand", "--budgets", "1e10,1e11",
                                        "--format", fmt])
        assert res.exit_code == 2 and res.stdout == ""
        assert res.stderr.startswith("error: no compute budget in 1e+10, 1e+11 can be met")
        assert len(res.stderr.splitlines()) == 1


def test_export_of_a_critic_sb3_cannot_build_gives_no_policy():
    """SimbaV2: `policy: null` (SAC(None, ...) fails) rather than MlpPolicy, which would build
    SB3's default critic in silence; one warning says why."""
    res = CliRunner().invoke(main, ["export", "simbav2/h1-crawl-v0", "--budgets", "1e16,1e17",
                                    "--format", "json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)["budgets"]
    assert [r["policy"] for r in rows] == [None, None]
    assert "policy_kwargs" not in rows[0]["hyperparameters"]
    assert res.stderr.count("SB3 cannot build simbav2/h1-crawl-v0's critic") == 1
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e16",
                                    "--format", "json"])
    assert json.loads(res.stdout)["budgets"][0]["policy"] == "MlpPolicy"
    assert "SB3 cannot" not in res.stderr


def test_short_log_axes_label_plain_major_ticks_only(tmp_path):
    """Under two decades, ticks at 1, 2 and 5 x 10^k labelled 2000, 5000, 10^4 and no minor
    labels (matplotlib's 3x10^3 and 4x10^3 ran into each other); wider axes keep matplotlib's
    labels."""
    plt = report._plt()
    fig, (short, wide) = plt.subplots(1, 2)
    short.loglog([1500, 13000], [1500, 13000])
    wide.loglog([1e2, 1e7], [1e2, 1e7])
    for ax in (short, wide):
        report._short_log_ticks(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in short.get_xticklabels()
              if short.get_xlim()[0] <= t.get_position()[0] <= short.get_xlim()[1]]
    assert labels == ["2000", "5000", "$10^{4}$"]
    assert not [t.get_text() for t in short.xaxis.get_minorticklabels() if t.get_text()]
    assert "$\\mathdefault{10^{4}}$" in [t.get_text() for t in wide.get_xticklabels()]
    plt.close(fig)


@pytest.mark.parametrize("fit_id", advisor.list_fits())
def test_fit_only_figures_render_for_every_shipped_fit(fit_id, tmp_path):
    ctx = report.load_context(fit_id, budget=advisor.Budget(total=1e30))
    for kind in ("data", "frontier", "batch"):
        assert report.save_figure(kind, ctx, tmp_path / f"{kind}.png").stat().st_size > 10_000


def test_report_and_plot_mark_the_recommendation_of_delta_and_target(tmp_path):
    """report and plot had no --delta or --target (a hostile round): the marked recommendation
    is now the one `recommend` gives with them, and the frontier's iso-lines use that delta;
    either without a budget is one usage error."""
    from advisor import Budget, recommend

    ctx = report.load_context("bro/humanoid-stand", budget=Budget(total=1e17, delta=5e10))
    want = recommend(Budget(total=1e17, delta=5e10), fit="bro/humanoid-stand")
    assert ctx.rec == want and ctx.rec.delta == 5e10
    fig = report.figure_frontier(ctx)  # the iso-total line of the budget, at its delta
    (line,) = [ln for ln in fig.axes[1].get_lines() if ln.get_label().startswith("your budget")]
    c, d = line.get_data()
    np.testing.assert_allclose(c + 5e10 * d, 1e17, rtol=1e-9)
    report._plt().close(fig)
    ctx = report.load_context("bro/humanoid-stand", budget=Budget(compute=1e17), target=600)
    assert ctx.rec.target == 600
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", "bro/humanoid-stand", "--compute", "1e17",
                                    "--target", "600", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert re.search(r"Recommended</b> for compute 1e\+17 FLOPs:[^<]*target 600;",
                     out.read_text())
    res = CliRunner().invoke(main, ["plot", "frontier", "bro/humanoid-stand", "--total", "1e17",
                                    "--delta", "5e10", "-o", str(tmp_path / "f.png")])
    assert res.exit_code == 0 and (tmp_path / "f.png").stat().st_size > 10_000
    for bad in (["--target", "600"], ["--compute", "1e17", "--delta", "5e10"]):
        res = CliRunner().invoke(main, ["plot", "frontier", "bro/humanoid-stand", *bad, "-o",
                                        str(tmp_path / "g.png")])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output


def test_runs_a_fit_was_not_made_from_are_named_and_predicted_by_the_fit(data_dir, tmp_path):
    """simbav2/h1-crawl-v0 with --runs fitted_bs.zip (BRO's runs) drew a parity plot titled with
    the SimbaV2 fit's id and a leave-one-config-out error refitted to BRO's runs. Runs whose
    file is not the one the fit records are now named on stderr and on the figures, and parity
    predicts them with the fit as it is."""
    ctx = report.load_context("simbav2/h1-crawl-v0", data_dir / "fitted_bs.zip", n_boot=0)
    assert ctx.foreign.startswith("fitted_bs.zip is not the run data simbav2/h1-crawl-v0 was "
                                  f"made from ({SIMBA}, sha256 7cf40286826d...")
    ax = report.figure_parity(ctx).axes[0]
    assert "on runs it was not made from" in ax.get_title()
    t = ctx.table
    ok = np.isfinite(t.data)
    expected = np.stack([ctx.fit.data_to_target(t.utd, t.params, float(target),
                                                batch_size=t.batch_size)
                         for target in t.targets], axis=1)  # at each run's own batch size
    points = ax.collections[0].get_offsets()
    assert np.allclose(points[:, 0], t.data[ok]) and np.allclose(points[:, 1], expected[ok])
    low, high = (np.stack(x, axis=1) for x in zip(*(  # what recommend's interval gives
        ctx.fit.interval(t.utd, t.params, float(target), 0.8, batch_size=t.batch_size)
        for target in t.targets)))
    inside = ((t.data >= low) & (t.data <= high))[ok].mean()
    assert f"80% interval holds {100 * inside:.0f}% of these points" in ax.get_title()
    assert "runs it was not made from" in report.figure_data(ctx)._suptitle.get_text()
    assert "is not the run data" in report.render_report(ctx)
    res = CliRunner().invoke(main, ["plot", "parity", "simbav2/h1-crawl-v0", "--runs",
                                    str(data_dir / "fitted_bs.zip"), "-o",
                                    str(tmp_path / "p.png")])
    assert res.exit_code == 0 and "warning: fitted_bs.zip is not the run data" in res.output
    same = report.load_context("bro/h1-crawl-v0", data_dir / "fitted_bs.zip", n_boot=0)
    assert same.foreign is None  # the fit's own archive: nothing said
    res = CliRunner().invoke(main, ["plot", "td", "bro/h1-crawl-v0", "--runs",
                                    str(data_dir / "side_critic.zip"), "-o",
                                    str(tmp_path / "td.png")])
    assert res.exit_code == 0 and "warning" not in res.output  # td draws the runs alone


def test_a_calibrate_fit_knows_its_own_runs_by_their_configurations(tmp_path, monkeypatch):
    """A hostile round: a calibrate fit records no sha256 of its out-dir, so runs it was not
    made from (a tidy CSV of other widths) were taken for its own: the parity figure refitted
    the law to them and least squares raised a traceback. Its file records the configurations
    it was fitted on; other ones are now named, and predicted by the fit as it is."""
    from calibration import fitting

    own = report.load_context("bro-torch/Pendulum-v1",
                              Path(__file__).parents[1] / "runs" / "cpu-Pendulum-v1.tgz", n_boot=0)
    assert own.foreign is None and own.table is not None  # its own out-dir: refitted, no word
    rows = ["utd,width,batch_size,seed,step,return"]
    for utd in (1, 2):
        for width in (96, 256):
            for seed in (0, 1):
                rows += [f"{utd},{width},64,{seed},{step},{-1500 + 0.25 * step * utd:.1f}"
                         for step in range(0, 6001, 500)]
    csv = tmp_path / "mine.csv"
    csv.write_text("\n".join(rows) + "\n")

    def never(*args, **kwargs):
        raise AssertionError("refitted to runs the fit was not made from")

    monkeypatch.setattr(fitting, "leave_one_config_out", never)
    ctx = report.load_context("bro-torch/Pendulum-v1", csv, n_boot=0)
    assert ctx.foreign == ("mine.csv is not the run data bro-torch/Pendulum-v1 was made from: "
                           "they hold 0 of the 12 configurations (utd, params) it was fitted on, "
                           "and 4 others")
    assert "on runs it was not made from" in report.figure_parity(ctx).axes[0].get_title()
    # Its own runs with more (a planned grid's stage 1 at other configs) are its own; a part of
    # them is not what it was made from
    table = own.table
    extra = dataclasses.replace(table, utd=np.append(table.utd, 3.0),
                                params=np.append(table.params, table.params[0]))
    assert report._other_configs(own.fit, Path("out"), extra) is None
    part = dataclasses.replace(table, utd=table.utd[:3], params=table.params[:3])
    assert report._other_configs(own.fit, Path("out"), part) == (
        "out is not the run data bro-torch/Pendulum-v1 was made from: they hold 3 of the 12 "
        "configurations (utd, params) it was fitted on")


def test_configurations_a_calibrate_fit_was_not_fitted_on_are_left_out(monkeypatch, capsys):
    """A planned grid's out-dir holds stage-1 configurations that its fit (made on stage 2)
    does not: the parity figure refitted over them too, so its error was not the fit's."""
    runs = Path(__file__).parents[1] / "runs" / "cpu-Pendulum-v1.tgz"
    own = report.load_context("bro-torch/Pendulum-v1", runs, n_boot=0)
    t = own.table
    extra = dataclasses.replace(
        t, utd=np.append(t.utd, 3.0), params=np.append(t.params, t.params[0]),
        batch_size=np.append(t.batch_size, t.batch_size[0]), horizon=np.append(t.horizon, 1e4),
        data=np.vstack([t.data, t.data[:1]]), boot=np.concatenate([t.boot, t.boot[:, :1]], 1),
        n_seeds=np.append(t.n_seeds, 2),
        seed_data=None if t.seed_data is None else np.concatenate([t.seed_data,
                                                                   t.seed_data[:1]]))
    monkeypatch.setattr(report, "data_table", lambda *args, **kwargs: extra)
    ctx = report.load_context("bro-torch/Pendulum-v1", runs, n_boot=0)
    assert ctx.foreign is None and len(ctx.table.utd) == len(t.utd) == 12
    assert np.array_equal(ctx.table.data, t.data, equal_nan=True)
    assert ctx.left_out == ("1 configuration (utd, params) of these runs is not among the 12 "
                            "bro-torch/Pendulum-v1 was fitted on (a planned grid's stage 1) and "
                            "is left out of the figures")
    assert own.left_out is None  # its own runs, nothing more: nothing said
    from calibration import cli

    cli._warn_foreign(ctx, "parity")
    assert capsys.readouterr().err == f"note: {ctx.left_out}\n"


def test_runs_that_start_above_the_thresholds_are_not_drawn_at_step_0(tmp_path):
    """A hostile round: runs whose first return passes a threshold reach it at step 0, which
    log axes cannot show: parity drew an empty figure titled "error inf%", with matplotlib's
    "no positive values" warning. Those points are now left out and counted; with no other
    point the figure is not drawn, in one line."""
    def csv(name, start):
        rows = ["utd,width,batch_size,seed,step,return"]
        for utd in (1, 2):
            for width in (96, 256):
                rows += [f"{utd},{width},64,{seed},{step},{start(width) + 0.2 * step * utd:.1f}"
                         for seed in (0, 1) for step in range(0, 6001, 500)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
        return tmp_path / name

    some = report.load_context("bro-torch/Pendulum-v1",
                               csv("some.csv", lambda w: -100 if w == 96 else -1500), n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        title = report.figure_parity(some).axes[0].get_title()
    n = int((some.table.data == 0).sum())
    assert n > 0 and f"({n} points reached at step 0, before any update, not drawn)" in title
    assert "inf%" not in title
    every = report.load_context("bro-torch/Pendulum-v1", csv("all.csv", lambda w: -100),
                                n_boot=0)
    with pytest.raises(report.ReportError, match=r"^the parity figure has no point to draw: "
                       r"every threshold of bro-torch/Pendulum-v1 \(-993.8 to -189.5\) these "
                       r"runs reach, they reach at step 0, with their first return$"):
        report.figure_parity(every)


def test_a_refit_that_fails_in_the_parity_figure_is_one_line(data_dir, monkeypatch):
    from calibration import fitting

    def fails(*args, **kwargs):
        raise ValueError("Residuals are not finite in the initial point.")

    monkeypatch.setattr(fitting, "leave_one_config_out", fails)
    ctx = report.load_context("bro/h1-pole-v0", data_dir / "fitted_bs.zip", n_boot=0)
    with pytest.raises(report.ReportError, match=r"^the parity figure refits bro/h1-pole-v0 "
                       r"without each configuration of these runs, and a refit failed "
                       r"\(Residuals are not finite in the initial point.\): are they the runs "
                       r"it was made from\?$"):
        report.figure_parity(ctx)


def test_plot_says_what_a_budget_does_and_warns_as_recommend_does(tmp_path):
    """A hostile round: `plot batch --compute 1e17` dropped the budget in silence, `plot
    frontier` of an extrapolated budget printed none of recommend's warnings and cut its star
    at the axes' corner, the data figure's title promised run points without --runs, and the
    report sent readers to the wrong figure for the near-optimal shading."""
    from advisor import Budget, recommend

    res = CliRunner().invoke(main, ["plot", "batch", "bro/h1-crawl-v0", "--compute", "1e17",
                                    "-o", str(tmp_path / "b.png")])
    assert res.exit_code == 0, res.output
    assert "note: the batch figure draws no recommendation" in res.output
    res = CliRunner().invoke(main, ["plot", "frontier", "bro/dog-run", "--data", "1e12", "-o",
                                    str(tmp_path / "f.png")])
    rec = recommend(Budget(data=1e12), fit="bro/dog-run")
    assert res.exit_code == 0 and rec.warnings, res.output
    assert [ln for ln in res.output.splitlines() if ln.startswith("warning: ")] == [
        f"warning: {w}" for w in rec.warnings]
    ctx = report.load_context("bro/dog-run", budget=Budget(data=1e12))
    fig = report.figure_frontier(ctx)
    for ax, (x, y) in ((fig.axes[0], (rec.params, rec.utd)),
                       (fig.axes[1], (rec.predicted_compute, rec.predicted_data))):
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        assert x0 < x / 1.5 and x * 1.5 < x1 and y0 < y / 1.5 and y * 1.5 < y1
    report._plt().close(fig)
    fig = report.figure_data(report.load_context("bro/dog-run"))
    assert "points" not in fig._suptitle.get_text()
    report._plt().close(fig)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", "bro/h1-crawl-v0", "--compute", "1e17", "-o",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert f"shaded in the figure '{report.TITLES['frontier']}'" in out.read_text()


def test_a_report_at_a_terminal_says_which_figure_it_draws(monkeypatch, tmp_path):
    """`advisor report` drew for 20 s to a minute without a word; at a terminal it now names
    each figure as it starts it, and in a pipe or a log (CliRunner) it prints none."""
    import calibration.cli

    args = ["report", "bro/h1-stand-v0", "-o", str(tmp_path / "r.html")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "drawing" not in res.output, res.output
    monkeypatch.setattr(calibration.cli, "_stderr_is_terminal", lambda: True)
    res = CliRunner().invoke(main, args)
    lines = [ln for ln in res.output.splitlines() if ln.startswith("drawing figure ")]
    n = len(report.KINDS)
    assert res.exit_code == 0 and lines == [
        f"drawing figure {i}/{n}: {report.TITLES[k]}" for i, k in enumerate(report.KINDS, 1)]
    assert res.output.splitlines()[-1].startswith("wrote ")
