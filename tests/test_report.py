"""Figures, the HTML report, export, and fits shipped by other packages."""

import json
import re

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


def test_td_figure_from_side_critic_archive(data_dir, tmp_path):
    ctx = report.load_context("bro/h1-pole-v0", data_dir / "side_critic.zip")
    assert report.save_figure("td", ctx, tmp_path / "td.png").stat().st_size > 10_000


def test_figures_without_runs_say_what_is_missing():
    ctx = report.load_context("bro/h1-stand-v0")
    with pytest.raises(report.ReportError, match="--runs"):
        report.figure_parity(ctx)
    with pytest.raises(report.ReportError, match="validation_critic_loss"):
        report.figure_td(ctx)


def test_report_is_one_offline_html_with_every_image(simba_ctx, tmp_path):
    path = report.write_report(simba_ctx, tmp_path / "r.html")
    text = path.read_text()
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,', text)
    assert images == list(report.KINDS)
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "Recommended" in text


def test_the_report_of_a_few_shot_fit_names_its_prior_and_its_notes(tmp_path):
    """bro-torch/Hopper-v5's page said neither that its exponents are the dmc family's nor
    what the fit is good for."""
    ctx = report.load_context("bro-torch/Hopper-v5")
    text = report.render_report(ctx)
    assert "prior: dmc: bro/acrobot-swingup" in text
    assert "<summary>notes (" in text and "few-shot on purpose" in text
    assert "short runs, low thresholds" in text


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


def test_export_lists_one_entry_per_budget():
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e10,1e16,1e18",
                                    "--format", "json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)["budgets"]
    assert [r["compute"] for r in rows] == [1e10, 1e16, 1e18]
    assert "error" in rows[0] and rows[2]["width"] >= rows[1]["width"]
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e16,x"])
    assert res.exit_code == 2


@pytest.mark.parametrize("fit_id", advisor.list_fits())
def test_fit_only_figures_render_for_every_shipped_fit(fit_id, tmp_path):
    ctx = report.load_context(fit_id, budget=advisor.Budget(total=1e30))
    for kind in ("data", "frontier", "batch"):
        assert report.save_figure(kind, ctx, tmp_path / f"{kind}.png").stat().st_size > 10_000
